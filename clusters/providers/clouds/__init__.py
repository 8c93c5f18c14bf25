"""What Flotilla knows about each libcloud provider: one module per provider, one adapter per capability.

A provider module says which credentials the provider takes and gives its capability adapters:
compute (how its libcloud driver is built from the account, regions and sizes, which image a VM
boots, how a VM is created) and, where the provider has one, the firewall (how it admits
"members of this cluster only" — by group or tag, or by address, kept equal to the running VMs —
and how it reconciles each owner's rules). Which provider offers which capability is declared
once, by its driver in `clusters.providers.cloud`, which also holds everything shared: the order
of steps, crash safety, the k3s bootstrap.

Adapters return Flotilla's own small types (`Vm`, `Region`, `Size`); libcloud's objects stay
inside this package and `cloud.py`. Libcloud's exceptions are translated there, once.
"""

from clusters.providers.clouds.aws import Ec2Api, Ec2Firewall
from clusters.providers.clouds.azure import AzureApi, AzureFirewall
from clusters.providers.clouds.base import (
    CLUSTER_OWNER,
    DEFAULT_API_CIDRS,
    CloudAccount,
    CloudApi,
    Firewall,
    FirewallRule,
    Vm,
    VmRequest,
    checked_endpoint,
    firewall_rules,
)
from clusters.providers.clouds.digitalocean import DigitalOceanApi, DigitalOceanFirewall
from clusters.providers.clouds.gce import GceApi, GceFirewall
from clusters.providers.clouds.linode import LinodeApi, LinodeFirewall
from clusters.providers.clouds.openstack import OpenStackApi, OpenStackFirewall
from clusters.providers.clouds.vultr import VultrApi, VultrFirewall

__all__ = [
    "CLUSTER_OWNER",
    "DEFAULT_API_CIDRS",
    "AzureApi",
    "AzureFirewall",
    "CloudAccount",
    "CloudApi",
    "DigitalOceanApi",
    "DigitalOceanFirewall",
    "Ec2Api",
    "Ec2Firewall",
    "Firewall",
    "FirewallRule",
    "GceApi",
    "GceFirewall",
    "LinodeApi",
    "LinodeFirewall",
    "OpenStackApi",
    "OpenStackFirewall",
    "Vm",
    "VmRequest",
    "VultrApi",
    "VultrFirewall",
    "checked_endpoint",
    "firewall_rules",
]
