"""Deployment material: compose files, Kubernetes manifests, the demo fleet."""
