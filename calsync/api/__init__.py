"""calsync's faces: JSON views shared by the CLI and (later) the HTTP API."""
