"""Word lists for codenames and suggested passwords: the EFF large list (CC BY 3.0 US),
and Ukrainian and Russian lists made by scripts/wordlists.py (CC BY-SA 4.0); see README.md."""
