"""Kattle: Rancher Cattle's orchestration model on Kubernetes."""
