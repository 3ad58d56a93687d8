"""The docker-free local stack: the template's resources on moto, its handlers in-process."""
