"""The air-gapped workstation: a local vault of decrypted submissions.

Nothing here imports Flask except `web`, which serves the triage pages on
loopback; importing, searching, replying and exporting work without it.
"""
