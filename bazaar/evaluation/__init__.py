"""The evaluation: measuring the running system and reporting on it (figures, docs/evaluation.md)."""
