"""The intake server: the witness form, the staff app, the receive path, the
queue, the sanitizers, retention and doctor. It holds public keys only and
never imports the workstation."""
