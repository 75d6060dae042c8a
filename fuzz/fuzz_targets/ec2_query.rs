//! Fuzz target for the EC2 Query parser (ADR 25): any query string and
//! form body, with names drawn from the parameters of the actions nuage
//! serves (or arbitrary), and action names drawn from the served list (or
//! arbitrary). The parse must never panic, must answer the same twice, and
//! a recognised operation must be the action asked for.
//!
//! ```text
//! scripts/fuzz 60 ec2_query
//! ```
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nuage_api::ec2::{parse_for_fuzzing as parse, served_actions};
use nuage_fuzz::{query_string, Name};

const PARAMS: &[&str] = &[
    "Action",
    "Version",
    "DryRun",
    "InstanceId.1",
    "InstanceId.2",
    "ImageId",
    "ImageId.1",
    "InstanceType",
    "MinCount",
    "MaxCount",
    "KeyName",
    "KeyName.1",
    "KeyType",
    "UserData",
    "ClientToken",
    "MaxResults",
    "NextToken",
    "Filter.1.Name",
    "Filter.1.Value.1",
    "Filter.2.Name",
    "Filter.01.Name",
    "Filter.1.Value.0",
    "TagSpecification.1.ResourceType",
    "TagSpecification.1.Tag.1.Key",
    "TagSpecification.1.Tag.1.Value",
    "Tag.1.Key",
    "Tag.1.Value",
    "ResourceId.1",
    "SecurityGroupId.1",
    "SecurityGroup.1",
    "SubnetId",
    "PrivateIpAddress",
    "Placement.AvailabilityZone",
    "MetadataOptions.HttpTokens",
    "PublicKeyMaterial",
    "Attribute",
    "InstanceType.Value",
    "Force",
    "RegionName.1",
    "ZoneName.1",
    "AttributeName.1",
    "Owner.1",
];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    action: Name<'a>,
    query: Vec<(Name<'a>, Option<&'a str>)>,
    body: Vec<(Name<'a>, Option<&'a str>)>,
    raw_body: Option<&'a [u8]>,
}

fuzz_target!(|input: Input<'_>| {
    let actions = served_actions();
    let action = input.action.pick(&actions);
    let query = query_string(&format!("Action={action}"), &input.query, PARAMS);
    let body = match input.raw_body {
        Some(b) => b.to_vec(),
        None => query_string("", &input.body, PARAMS).into_bytes(),
    };
    let first = parse(&query, &body);
    assert_eq!(first, parse(&query, &body));
    if let Ok(op) = &first {
        assert!(actions.contains(&op.as_str()), "parsed into {op}");
    }
});
