"""Plain types, typed errors, paths and the progress/cancel protocol. Never imports Qt."""
