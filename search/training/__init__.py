"""The networks and how one crop policy is trained and evaluated (knows no engine, no MLflow)."""
