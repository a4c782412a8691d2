"""ServiceProblem: lifecycle, use cases and storage."""
