"""Reporting on run directories: the run report (report.md) and the ablation tables across sweep points."""
