"""Local mode: Sluice's whole job on one machine, without Kubernetes (``sluice local``)."""
