"""What the server's pages and the workstation's desk share: the templates and
catalogs they are made from, the four languages, Babel and the strict headers.

Both places import this; it imports neither.
"""
