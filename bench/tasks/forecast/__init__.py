"""The forecast task: its declaration is `task.TASK`."""
