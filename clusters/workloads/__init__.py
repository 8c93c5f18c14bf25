"""Apps (workloads): their spec, manifests, rollout status, pods and adoption — pure domain code, no models and no HTTP."""  # noqa: E501
