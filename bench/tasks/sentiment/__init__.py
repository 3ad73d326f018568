"""The sentiment task: its declaration is `task.TASK`."""
