"""The air-gapped workstation: decrypt bundles, keep a local vault, triage,
reply and export case files. It imports the format and never the server.

Nothing here imports Flask except `desk`, which serves the triage pages on
loopback; importing, searching, replying and exporting work without it.
"""
