"""What the witness and staff apps share: sessions, languages, error pages."""
