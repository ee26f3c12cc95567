"""Run-time plumbing, below the training and evaluation code: ranks and marker files, the run directory's
manifest and lock, and how a run ends on SIGTERM."""
