"""The shared format: envelopes, bundles, key files and reply bundles; the only
things that cross between the server and the workstation (docs/envelope.md,
docs/bundle.md). It imports neither place."""
