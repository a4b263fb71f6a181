"""The trainer process: the loop, the learner step, online collectors, checkpoints, snapshots, evaluation."""
