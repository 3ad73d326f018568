"""The image task: its declaration is `task.TASK`."""
