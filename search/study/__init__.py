"""One trial, its typed record, the selection rules and the confirmation."""
