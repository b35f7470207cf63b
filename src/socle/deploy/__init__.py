"""From trusted images to a deployment an ops team can apply: kustomize, Helm, policies.

socle renders standard manifests (never applies them): a kustomize base and one
overlay per environment, a Helm chart with its provenance, admission policies
that require socle's signature, a checker for any manifests, and a smoke run of
the pod spec under Docker Engine. Every image is pinned by a digest socle has
verified.
"""
