"""Word lists for codenames and suggested passwords (the EFF large list, CC BY 3.0 US)."""
