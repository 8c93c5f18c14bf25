from tests.clusters.cloud.fake_context import FakeContext, make_cluster, make_pool


def test_dbg(ec2):
    d = ec2.driver()
    ctx = FakeContext(make_cluster("web"), [make_pool("general", "t3.small", 1)])
    d.reconcile(ctx)
    caps = d._capabilities("us-east-1")
    [r] = ctx.resources("firewall")
    g = caps.firewall.driver.ex_get_security_groups(group_ids=[r.provider_id])
    print("RULES", r.provider_id, g[0].ingress_rules)
    assert 0
