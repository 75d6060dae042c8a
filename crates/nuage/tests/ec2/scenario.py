#!/usr/bin/env python3
"""The boto3 steps of the end-to-end EC2 scenario (tests/ec2_scenario.rs),
with boto3's own waiters and paginators:

    scenario.py ENDPOINT describe VPC_ID SUBNET_ID ID...
        a paginator over describe_instances (EC2's smallest page, 5) with the
        VPC, subnet, tag and state filters finds exactly ID...
    scenario.py ENDPOINT address INSTANCE_ID
        allocates an elastic IP, associates it with the instance and checks
        that describe_addresses and describe_instances show it; prints
        {"AllocationId", "AssociationId", "PublicIp"} as JSON
    scenario.py ENDPOINT stop-start INSTANCE_ID PUBLIC_IP
        stops the instance (waiter instance_stopped), starts it (waiter
        instance_running); the address stays associated throughout

Credentials and region come from the environment (admin.env). Any failed
check raises, so the process exits non-zero with the reason.
"""
import json, os, sys

import boto3

endpoint, step, args = sys.argv[1], sys.argv[2], sys.argv[3:]
ec2 = boto3.client("ec2", endpoint_url=endpoint,
                   verify=os.environ.get("AWS_CA_BUNDLE") or None)
fast = {"Delay": 1, "MaxAttempts": 90}


def instance(iid):
    r = ec2.describe_instances(InstanceIds=[iid])["Reservations"]
    return r[0]["Instances"][0]


if step == "describe":
    vpc, subnet, want = args[0], args[1], args[2:]
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc]},
            {"Name": "subnet-id", "Values": [subnet]},
            {"Name": "tag:Name", "Values": ["scenario-*"]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ],
        PaginationConfig={"PageSize": 5},
    )
    pages = list(pages)
    seen = [i["InstanceId"] for p in pages for r in p["Reservations"]
            for i in r["Instances"]]
    assert sorted(seen) == sorted(want), (seen, want)
    assert all("NextToken" not in p for p in pages[-1:]), pages
    print(json.dumps(seen))
elif step == "address":
    (iid,) = args
    a = ec2.allocate_address(Domain="vpc")
    assert a["Domain"] == "vpc", a
    assoc = ec2.associate_address(AllocationId=a["AllocationId"], InstanceId=iid)
    d = ec2.describe_addresses(AllocationIds=[a["AllocationId"]])["Addresses"]
    assert len(d) == 1 and d[0]["InstanceId"] == iid, d
    assert d[0]["AssociationId"] == assoc["AssociationId"], (d, assoc)
    got = instance(iid)
    assert got.get("PublicIpAddress") == a["PublicIp"], got
    print(json.dumps({"AllocationId": a["AllocationId"],
                      "AssociationId": assoc["AssociationId"],
                      "PublicIp": a["PublicIp"]}))
elif step == "stop-start":
    iid, ip = args
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=fast)
    d = ec2.describe_addresses(PublicIps=[ip])["Addresses"]
    assert d[0].get("InstanceId") == iid, d
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=fast)
    got = instance(iid)
    assert got["State"]["Name"] == "running", got
    assert got.get("PublicIpAddress") == ip, got
    print("stop-start ok")
else:
    sys.exit(f"unknown step {step}")
