"""What Flotilla knows about each libcloud compute provider: one small adapter per provider.

An adapter says which credentials the provider takes, how to build its libcloud driver, how to
list regions and sizes, which image a VM boots, how a VM is created, and whether (and how) the
provider gives a firewall that admits "members of this cluster only" (by group or tag, or by
address, kept equal to the running VMs). Everything else — the order of steps, crash safety, the
k3s bootstrap — is shared in `clusters.providers.cloud`.

Adapters return Flotilla's own small types (`Vm`, `Region`, `Size`); libcloud's objects stay
inside this package and `cloud.py`. Libcloud's exceptions are translated there, once.
"""

from clusters.providers.clouds.aws import Ec2Api
from clusters.providers.clouds.azure import AzureApi
from clusters.providers.clouds.base import (
    DEFAULT_API_CIDRS,
    CloudApi,
    FirewallRule,
    Vm,
    VmRequest,
    checked_endpoint,
    firewall_rules,
)
from clusters.providers.clouds.gce import GceApi
from clusters.providers.clouds.hosted import DigitalOceanApi, LinodeApi, VultrApi
from clusters.providers.clouds.openstack import OpenStackApi

__all__ = [
    "DEFAULT_API_CIDRS",
    "AzureApi",
    "CloudApi",
    "DigitalOceanApi",
    "Ec2Api",
    "FirewallRule",
    "GceApi",
    "LinodeApi",
    "OpenStackApi",
    "Vm",
    "VmRequest",
    "VultrApi",
    "checked_endpoint",
    "firewall_rules",
]
