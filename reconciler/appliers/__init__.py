"""Capabilities that change the machine: each observes its part of the world, plans purely, applies idempotently."""
