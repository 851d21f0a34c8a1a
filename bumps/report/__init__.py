"""Reports over tasks: the claims report that joins every task's section, terminal tables."""
