"""The local provider's runtime: real Kubernetes control planes (kwok) on the Flotilla host."""
