//! Policy as code for `template.yaml`: no inbound rules on host and build security groups,
//! IMDSv2 wherever instances start, encrypted volumes and AMIs, no wide IAM grants, and a
//! failure destination, an errors alarm and bounded log retention for every asynchronously
//! invoked function.
//!
//! Each rule is a function in `policy` returning the violations it finds, one sentence each
//! naming the resource. Every rule is run on the committed template (expecting none) and on a
//! copy broken on purpose (expecting the break to be reported), so a checker that silently
//! stops looking fails too.

use serde_yaml::{Mapping, Value};

/// Mutating actions a statement may grant on `Resource: "*"`, each with the reason it cannot
/// be scoped. Read actions (Describe*, Get*, List*) need no entry.
const MUTATING_ACTIONS_ALLOWED_ON_EVERY_RESOURCE: &[(&str, &str)] = &[
    (
        "xray:PutTraceSegments",
        "X-Ray has no resource-level permissions; SAM grants it through AWSXrayWriteOnlyAccess",
    ),
    (
        "xray:PutTelemetryRecords",
        "X-Ray has no resource-level permissions; SAM grants it through AWSXrayWriteOnlyAccess",
    ),
];

/// The only managed policies an instance role (trusted by EC2) may carry.
const INSTANCE_ROLE_MANAGED_POLICIES: &[&str] = &[
    "AmazonSSMManagedInstanceCore",
    "EC2InstanceProfileForImageBuilder",
];

mod policy {
    //! Rules over a parsed CloudFormation/SAM template. Intrinsic functions may arrive either as
    //! YAML short tags (`!Ref`, `Value::Tagged`) or in their long form (`{"Ref": ...}`); both
    //! are understood. A value that is only known at deploy time never counts as compliant.

    use serde_yaml::Value;

    /// Event source types whose events reach a function through an asynchronous invoke.
    const ASYNC_EVENT_TYPES: &[&str] = &[
        "EventBridgeRule",
        "CloudWatchEvent",
        "Schedule",
        "ScheduleV2",
        "SNS",
        "S3",
        "CloudWatchLogs",
        "IoTRule",
    ];

    /// Managed policies too broad to attach to anything this project creates.
    fn is_broad_managed_policy(name: &str) -> bool {
        let name = name.rsplit('/').next().unwrap_or(name);
        name == "AdministratorAccess" || name == "PowerUserAccess" || name.ends_with("FullAccess")
    }

    // ---- template access ------------------------------------------------------------------

    pub fn resources(template: &Value) -> Vec<(&str, &Value)> {
        template
            .get("Resources")
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?, v)))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn resources_of_type<'a>(template: &'a Value, ty: &str) -> Vec<(&'a str, &'a Value)> {
        resources(template)
            .into_iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
            .collect()
    }

    fn properties(resource: &Value) -> Option<&Value> {
        resource.get("Properties")
    }

    fn path<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a Value> {
        keys.iter().try_fold(value, |v, k| v.get(*k))
    }

    fn global_function_setting<'a>(template: &'a Value, key: &str) -> Option<&'a Value> {
        path(template, &["Globals", "Function", key])
    }

    // ---- intrinsic functions --------------------------------------------------------------

    /// The intrinsic function a value calls, as `("Ref" | "Fn::Sub" | ..., argument)`.
    pub fn intrinsic(value: &Value) -> Option<(String, &Value)> {
        match value {
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let bare = tag.trim_start_matches('!');
                let name = match bare {
                    "Ref" | "Condition" => bare.to_string(),
                    _ => format!("Fn::{bare}"),
                };
                Some((name, &tagged.value))
            }
            Value::Mapping(m) if m.len() == 1 => {
                let (key, arg) = m.iter().next()?;
                let key = key.as_str()?;
                (key == "Ref" || key.starts_with("Fn::")).then(|| (key.to_string(), arg))
            }
            _ => None,
        }
    }

    fn sub_template(arg: &Value) -> Option<&str> {
        match arg {
            Value::String(s) => Some(s),
            Value::Sequence(items) => items.first().and_then(Value::as_str),
            _ => None,
        }
    }

    /// The text of a literal string, or the template of a `Fn::Sub`.
    fn text(value: &Value) -> Option<&str> {
        match intrinsic(value) {
            Some((name, arg)) if name == "Fn::Sub" => sub_template(arg),
            Some(_) => None,
            None => value.as_str(),
        }
    }

    /// Whether `value` points at the resource `id` through Ref, GetAtt or Sub, at any depth.
    pub fn refers_to(value: &Value, id: &str) -> bool {
        if let Some((name, arg)) = intrinsic(value) {
            let direct = match name.as_str() {
                "Ref" => arg.as_str() == Some(id),
                "Fn::GetAtt" => match arg {
                    Value::String(s) => s.split('.').next() == Some(id),
                    Value::Sequence(items) => items.first().and_then(Value::as_str) == Some(id),
                    _ => false,
                },
                "Fn::Sub" => sub_template(arg).is_some_and(|t| {
                    t.contains(&format!("${{{id}}}")) || t.contains(&format!("${{{id}."))
                }),
                _ => false,
            };
            return direct || refers_to(arg, id);
        }
        match value {
            Value::Sequence(items) => items.iter().any(|v| refers_to(v, id)),
            Value::Mapping(m) => m.values().any(|v| refers_to(v, id)),
            _ => false,
        }
    }

    /// The values a setting can take: both branches of a `Fn::If`, nothing for
    /// `Ref: AWS::NoValue`, the value itself otherwise.
    fn branches(value: &Value) -> Vec<&Value> {
        match intrinsic(value) {
            Some((name, Value::Sequence(args))) if name == "Fn::If" && args.len() == 3 => {
                args[1..].iter().flat_map(branches).collect()
            }
            Some((name, arg)) if name == "Ref" && arg.as_str() == Some("AWS::NoValue") => vec![],
            _ => vec![value],
        }
    }

    /// The items of a list-or-single setting, with conditional branches expanded.
    fn items(value: &Value) -> Vec<&Value> {
        branches(value)
            .into_iter()
            .flat_map(|v| match v {
                Value::Sequence(list) => list.iter().flat_map(branches).collect(),
                single => vec![single],
            })
            .collect()
    }

    fn literal_strings(value: &Value) -> Vec<&str> {
        items(value).into_iter().filter_map(Value::as_str).collect()
    }

    fn is_true(value: Option<&Value>) -> bool {
        match value {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        }
    }

    fn is_required(value: Option<&Value>) -> bool {
        value.and_then(Value::as_str) == Some("required")
    }

    fn non_empty(value: Option<&Value>) -> bool {
        value.is_some_and(|v| !items(v).is_empty())
    }

    // ---- security groups ------------------------------------------------------------------

    /// Host and build instances are reached only through SSM, so no security group may accept
    /// inbound traffic.
    pub fn security_group_ingress(template: &Value) -> Vec<String> {
        let mut found = Vec::new();
        for (id, sg) in resources_of_type(template, "AWS::EC2::SecurityGroup") {
            if non_empty(properties(sg).and_then(|p| p.get("SecurityGroupIngress"))) {
                found.push(format!(
                    "{id}: security group has ingress rules (SecurityGroupIngress)"
                ));
            }
        }
        for (id, _) in resources_of_type(template, "AWS::EC2::SecurityGroupIngress") {
            found.push(format!(
                "{id}: AWS::EC2::SecurityGroupIngress opens a security group"
            ));
        }
        found
    }

    // ---- instance metadata ----------------------------------------------------------------

    /// Every place that starts instances must demand session tokens (IMDSv2).
    pub fn instances_allowing_imdsv1(template: &Value) -> Vec<String> {
        let mut found = Vec::new();
        let infra = "AWS::ImageBuilder::InfrastructureConfiguration";
        for (id, r) in resources_of_type(template, infra) {
            let tokens =
                properties(r).and_then(|p| path(p, &["InstanceMetadataOptions", "HttpTokens"]));
            if !is_required(tokens) {
                found.push(format!(
                    "{id}: build and test instances allow IMDSv1 \
                     (InstanceMetadataOptions.HttpTokens is not `required`)"
                ));
            }
        }
        for (id, r) in resources_of_type(template, "AWS::EC2::LaunchTemplate") {
            let tokens = properties(r)
                .and_then(|p| path(p, &["LaunchTemplateData", "MetadataOptions", "HttpTokens"]));
            if !is_required(tokens) {
                found.push(format!(
                    "{id}: launch template allows IMDSv1 \
                     (MetadataOptions.HttpTokens is not `required`)"
                ));
            }
        }
        let templates: Vec<&str> = resources_of_type(template, "AWS::EC2::LaunchTemplate")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        for (id, r) in resources_of_type(template, "AWS::EC2::Instance") {
            let props = properties(r);
            let own = props.and_then(|p| path(p, &["MetadataOptions", "HttpTokens"]));
            // An instance started from one of this template's launch templates inherits its
            // metadata options, which are checked above.
            let from_checked_template = props
                .and_then(|p| p.get("LaunchTemplate"))
                .is_some_and(|lt| templates.iter().any(|t| refers_to(lt, t)));
            if !is_required(own) && !from_checked_template {
                found.push(format!(
                    "{id}: instance allows IMDSv1 (MetadataOptions.HttpTokens is not `required`)"
                ));
            }
        }
        found
    }

    // ---- encryption -----------------------------------------------------------------------

    fn unencrypted_mappings(
        id: &str,
        what: &str,
        mappings: Option<&Value>,
        found: &mut Vec<String>,
    ) {
        for mapping in mappings.map(items).unwrap_or_default() {
            let Some(ebs) = mapping.get("Ebs") else {
                continue;
            };
            if !is_true(ebs.get("Encrypted")) {
                let device = mapping
                    .get("DeviceName")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                found.push(format!(
                    "{id}: {what} volume {device} is not encrypted (Ebs.Encrypted)"
                ));
            }
        }
    }

    /// Every volume and AMI the project creates is encrypted at rest.
    pub fn unencrypted_storage(template: &Value) -> Vec<String> {
        let mut found = Vec::new();
        for (id, r) in resources_of_type(template, "AWS::ImageBuilder::ImageRecipe") {
            let mappings = properties(r).and_then(|p| p.get("BlockDeviceMappings"));
            if !non_empty(mappings) {
                found.push(format!(
                    "{id}: recipe declares no block device mapping, so the AMI keeps the parent \
                     image's root volume settings instead of an encrypted one"
                ));
            }
            unencrypted_mappings(id, "AMI", mappings, &mut found);
        }
        for (id, r) in resources_of_type(template, "AWS::ImageBuilder::ContainerRecipe") {
            let mappings = properties(r)
                .and_then(|p| path(p, &["InstanceConfiguration", "BlockDeviceMappings"]));
            unencrypted_mappings(id, "build", mappings, &mut found);
        }
        for (id, r) in resources_of_type(template, "AWS::EC2::LaunchTemplate") {
            let mappings =
                properties(r).and_then(|p| path(p, &["LaunchTemplateData", "BlockDeviceMappings"]));
            unencrypted_mappings(id, "launch template", mappings, &mut found);
        }
        for (id, r) in resources_of_type(template, "AWS::EC2::Instance") {
            let mappings = properties(r).and_then(|p| p.get("BlockDeviceMappings"));
            unencrypted_mappings(id, "instance", mappings, &mut found);
        }
        for (id, r) in resources_of_type(template, "AWS::EC2::Volume") {
            if !is_true(properties(r).and_then(|p| p.get("Encrypted"))) {
                found.push(format!("{id}: EBS volume is not encrypted (Encrypted)"));
            }
        }
        found
    }

    // ---- IAM ------------------------------------------------------------------------------

    fn is_read_action(action: &str) -> bool {
        let verb = action.split_once(':').map_or(action, |(_, verb)| verb);
        ["describe", "get", "list"]
            .iter()
            .any(|p| verb.to_ascii_lowercase().starts_with(p))
    }

    fn check_statement(
        owner: &str,
        index: usize,
        statement: &Value,
        exceptions: &[(&str, &str)],
        found: &mut Vec<String>,
    ) {
        if statement.get("Effect").and_then(Value::as_str) == Some("Deny") {
            return;
        }
        let label = match statement.get("Sid").and_then(Value::as_str) {
            Some(sid) => format!("{owner}: statement {sid}"),
            None => format!("{owner}: statement #{index}"),
        };
        if statement.get("NotAction").is_some() {
            found.push(format!(
                "{label} uses NotAction, which allows every other action"
            ));
        }
        if statement.get("NotResource").is_some() {
            found.push(format!(
                "{label} uses NotResource, which allows every other resource"
            ));
        }
        let actions = statement
            .get("Action")
            .map(literal_strings)
            .unwrap_or_default();
        let on_every_resource = statement
            .get("Resource")
            .map(literal_strings)
            .unwrap_or_default()
            .contains(&"*");
        for action in actions {
            if action == "*" {
                found.push(format!("{label} grants every action (`*`)"));
            } else if action.ends_with(":*") {
                found.push(format!(
                    "{label} grants every action of a service (`{action}`)"
                ));
            } else if on_every_resource
                && !is_read_action(action)
                && !exceptions
                    .iter()
                    .any(|(allowed, _)| allowed.eq_ignore_ascii_case(action))
            {
                found.push(format!(
                    "{label} grants the mutating action {action} on every resource"
                ));
            }
        }
    }

    fn check_document(
        owner: &str,
        document: Option<&Value>,
        exceptions: &[(&str, &str)],
        found: &mut Vec<String>,
    ) {
        let statements = document
            .and_then(|d| d.get("Statement"))
            .map(items)
            .unwrap_or_default();
        for (index, statement) in statements.into_iter().enumerate() {
            check_statement(owner, index, statement, exceptions, found);
        }
    }

    fn check_managed_policy_names(owner: &str, names: Option<&Value>, found: &mut Vec<String>) {
        for name in names
            .map(items)
            .unwrap_or_default()
            .into_iter()
            .filter_map(text)
        {
            if is_broad_managed_policy(name) {
                found.push(format!("{owner}: attaches the broad managed policy {name}"));
            }
        }
    }

    /// No statement grants `*`, `service:*` or a mutating action on `Resource: "*"` (apart from
    /// the listed exceptions), and no function hides its grants in a SAM policy template.
    pub fn wide_iam_grants(template: &Value, exceptions: &[(&str, &str)]) -> Vec<String> {
        let mut found = Vec::new();
        for (id, resource) in resources(template) {
            let ty = resource
                .get("Type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let props = properties(resource);
            match ty {
                "AWS::IAM::Role" => {
                    let inline = props.and_then(|p| p.get("Policies")).map(items);
                    for policy in inline.unwrap_or_default() {
                        check_document(id, policy.get("PolicyDocument"), exceptions, &mut found);
                    }
                    check_managed_policy_names(
                        id,
                        props.and_then(|p| p.get("ManagedPolicyArns")),
                        &mut found,
                    );
                }
                "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                    let document = props.and_then(|p| p.get("PolicyDocument"));
                    check_document(id, document, exceptions, &mut found);
                }
                "AWS::Serverless::Function" | "AWS::Serverless::StateMachine" => {
                    let policies = props.and_then(|p| p.get("Policies")).map(items);
                    for policy in policies.unwrap_or_default() {
                        if policy.get("Statement").is_some() {
                            check_document(id, Some(policy), exceptions, &mut found);
                        } else if let Some(name) = text(policy) {
                            if is_broad_managed_policy(name) {
                                found.push(format!(
                                    "{id}: attaches the broad managed policy {name}"
                                ));
                            }
                        } else if intrinsic(policy).is_some() {
                            // A reference to a policy declared in this template, checked there.
                        } else if let Some(template_name) = policy
                            .as_mapping()
                            .and_then(|m| m.keys().next())
                            .and_then(Value::as_str)
                        {
                            found.push(format!(
                                "{id}: uses the SAM policy template {template_name}, whose actions \
                                 this check cannot see; write the statements inline"
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        found
    }

    /// Whether a role can be assumed by EC2 instances.
    pub fn trusts_ec2(role: &Value) -> bool {
        let statements = properties(role)
            .and_then(|p| path(p, &["AssumeRolePolicyDocument", "Statement"]))
            .map(items)
            .unwrap_or_default();
        statements.into_iter().any(|s| {
            let services = s.get("Principal").and_then(|p| p.get("Service"));
            services
                .map(items)
                .unwrap_or_default()
                .into_iter()
                .filter_map(text)
                .any(|service| {
                    service == "ec2.amazonaws.com" || service.starts_with("ec2.${AWS::URLSuffix}")
                })
        })
    }

    /// Instance roles carry only the listed managed policies: no inline policies, no others.
    pub fn instance_role_extras(template: &Value, allowed: &[&str]) -> Vec<String> {
        let mut found = Vec::new();
        let roles: Vec<(&str, &Value)> = resources_of_type(template, "AWS::IAM::Role")
            .into_iter()
            .filter(|(_, r)| trusts_ec2(r))
            .collect();
        for (id, role) in &roles {
            let props = properties(role);
            if non_empty(props.and_then(|p| p.get("Policies"))) {
                found.push(format!("{id}: instance role has inline policies"));
            }
            let managed = props.and_then(|p| p.get("ManagedPolicyArns")).map(items);
            for arn in managed.unwrap_or_default() {
                let name = text(arn).and_then(|t| t.rsplit('/').next());
                if !name.is_some_and(|n| allowed.contains(&n)) {
                    let shown = text(arn).unwrap_or("a computed ARN");
                    found.push(format!(
                        "{id}: instance role carries the managed policy {shown}"
                    ));
                }
            }
        }
        for ty in ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"] {
            for (id, policy) in resources_of_type(template, ty) {
                let targets = properties(policy).and_then(|p| p.get("Roles"));
                for (role_id, _) in &roles {
                    if targets.is_some_and(|t| refers_to(t, role_id)) {
                        found.push(format!(
                            "{id}: adds permissions to the instance role {role_id}"
                        ));
                    }
                }
            }
        }
        found
    }

    // ---- asynchronously invoked functions -------------------------------------------------

    fn is_invoked_asynchronously(function: &Value) -> bool {
        let events = properties(function)
            .and_then(|p| p.get("Events"))
            .and_then(Value::as_mapping);
        events.is_some_and(|events| {
            events.values().any(|e| {
                e.get("Type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| ASYNC_EVENT_TYPES.contains(&t))
            })
        })
    }

    fn has_failure_destination(template: &Value, function: &Value) -> bool {
        let config = properties(function)
            .and_then(|p| p.get("EventInvokeConfig"))
            .or_else(|| global_function_setting(template, "EventInvokeConfig"));
        config
            .and_then(|c| path(c, &["DestinationConfig", "OnFailure", "Destination"]))
            .is_some_and(|d| !d.is_null())
    }

    /// Whether `value` names the function: a reference to it, or its literal FunctionName.
    fn names_function(value: &Value, id: &str, function_name: Option<&str>) -> bool {
        refers_to(value, id) || (function_name.is_some() && text(value) == function_name)
    }

    fn errors_alarms<'a>(
        template: &'a Value,
        id: &str,
        function_name: Option<&str>,
    ) -> Vec<(&'a str, &'a Value)> {
        let watches_errors = |metric: &Value| {
            metric.get("Namespace").and_then(Value::as_str) == Some("AWS/Lambda")
                && metric.get("MetricName").and_then(Value::as_str) == Some("Errors")
                && metric
                    .get("Dimensions")
                    .map(items)
                    .unwrap_or_default()
                    .into_iter()
                    .any(|d| {
                        d.get("Name").and_then(Value::as_str) == Some("FunctionName")
                            && d.get("Value")
                                .is_some_and(|v| names_function(v, id, function_name))
                    })
        };
        resources_of_type(template, "AWS::CloudWatch::Alarm")
            .into_iter()
            .filter(|(_, alarm)| {
                let Some(props) = properties(alarm) else {
                    return false;
                };
                let in_metrics = props
                    .get("Metrics")
                    .map(items)
                    .unwrap_or_default()
                    .into_iter()
                    .any(|m| path(m, &["MetricStat", "Metric"]).is_some_and(&watches_errors));
                watches_errors(props) || in_metrics
            })
            .collect()
    }

    fn log_groups<'a>(
        template: &'a Value,
        id: &str,
        function: &Value,
        function_name: Option<&str>,
    ) -> Vec<(&'a str, &'a Value)> {
        let configured = properties(function)
            .and_then(|p| path(p, &["LoggingConfig", "LogGroup"]))
            .or_else(|| global_function_setting(template, "LoggingConfig")?.get("LogGroup"));
        let default_name = function_name.map(|n| format!("/aws/lambda/{n}"));
        resources_of_type(template, "AWS::Logs::LogGroup")
            .into_iter()
            .filter(|(group_id, group)| {
                let name = properties(group).and_then(|p| p.get("LogGroupName"));
                configured.is_some_and(|c| refers_to(c, group_id))
                    || name.is_some_and(|n| {
                        (refers_to(n, id) && text(n).is_some_and(|t| t.starts_with("/aws/lambda/")))
                            || (default_name.is_some() && text(n) == default_name.as_deref())
                    })
            })
            .collect()
    }

    /// A function fed by asynchronous events keeps what it could not handle (on-failure
    /// destination), tells someone when it fails (alarm on Errors with an action) and does not
    /// keep logs forever (its log group sets RetentionInDays).
    pub fn async_functions_without_safety_nets(template: &Value) -> Vec<String> {
        let mut found = Vec::new();
        for (id, function) in resources_of_type(template, "AWS::Serverless::Function") {
            if !is_invoked_asynchronously(function) {
                continue;
            }
            let function_name = properties(function)
                .and_then(|p| p.get("FunctionName"))
                .and_then(text);

            if !has_failure_destination(template, function) {
                found.push(format!(
                    "{id}: asynchronous function has no \
                     EventInvokeConfig.DestinationConfig.OnFailure, so events that fail every \
                     retry are lost"
                ));
            }

            let alarms = errors_alarms(template, id, function_name);
            if alarms.is_empty() {
                found.push(format!(
                    "{id}: no CloudWatch alarm watches the function's Errors metric"
                ));
            }
            for (alarm_id, alarm) in alarms {
                if !non_empty(properties(alarm).and_then(|p| p.get("AlarmActions"))) {
                    found.push(format!(
                        "{alarm_id}: alarm on {id} Errors has no AlarmActions"
                    ));
                }
            }

            let groups = log_groups(template, id, function, function_name);
            if groups.is_empty() {
                found.push(format!(
                    "{id}: no log group declared for the function; Lambda would create one that \
                     keeps logs forever"
                ));
            }
            for (group_id, group) in groups {
                if properties(group)
                    .and_then(|p| p.get("RetentionInDays"))
                    .is_none()
                {
                    found.push(format!(
                        "{group_id}: log group of {id} has no RetentionInDays"
                    ));
                }
            }
        }
        found
    }
}

/// A value written as YAML, the way the template spells it.
fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("test YAML parses")
}

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml is readable");
    serde_yaml::from_str(&text).expect("template.yaml is valid YAML")
}

/// The logical id of the first resource of a type; the mutations below break that resource.
fn first_of_type(template: &Value, ty: &str) -> String {
    policy::resources_of_type(template, ty)
        .first()
        .map(|(id, _)| id.to_string())
        .unwrap_or_else(|| panic!("template.yaml declares no {ty}"))
}

fn resources_mut(template: &mut Value) -> &mut Mapping {
    template
        .get_mut("Resources")
        .and_then(Value::as_mapping_mut)
        .expect("Resources mapping")
}

fn properties_mut<'a>(template: &'a mut Value, id: &str) -> &'a mut Mapping {
    resources_mut(template)
        .get_mut(id)
        .and_then(|r| r.get_mut("Properties"))
        .and_then(Value::as_mapping_mut)
        .unwrap_or_else(|| panic!("resource {id} has Properties"))
}

fn add_resource(template: &mut Value, id: &str, resource: &str) {
    resources_mut(template).insert(Value::from(id), yaml(resource));
}

fn assert_clean(rule: &str, violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "{rule}:\n  {}",
        violations.join("\n  ")
    );
}

fn assert_reported(violations: &[String], resource: &str, words: &str) {
    assert!(
        violations
            .iter()
            .any(|v| v.starts_with(&format!("{resource}:")) && v.contains(words)),
        "expected a violation on {resource} mentioning `{words}`, got {violations:#?}"
    );
}

fn async_function(template: &Value) -> String {
    first_of_type(template, "AWS::Serverless::Function")
}

#[test]
fn the_template_declares_what_these_checks_guard() {
    let t = template();
    for ty in [
        "AWS::EC2::SecurityGroup",
        "AWS::ImageBuilder::InfrastructureConfiguration",
        "AWS::ImageBuilder::ImageRecipe",
        "AWS::Serverless::Function",
        "AWS::CloudWatch::Alarm",
        "AWS::Logs::LogGroup",
    ] {
        assert!(
            !policy::resources_of_type(&t, ty).is_empty(),
            "template.yaml has no {ty}"
        );
    }
}

// ---- security groups ----------------------------------------------------------------------

#[test]
fn host_security_groups_have_no_ingress() {
    assert_clean(
        "security group ingress",
        policy::security_group_ingress(&template()),
    );
}

#[test]
fn an_added_ingress_rule_is_reported() {
    let mut t = template();
    let sg = first_of_type(&t, "AWS::EC2::SecurityGroup");
    properties_mut(&mut t, &sg).insert(
        Value::from("SecurityGroupIngress"),
        yaml("- {IpProtocol: tcp, FromPort: 8080, ToPort: 8080, CidrIp: 0.0.0.0/0}"),
    );

    assert_reported(&policy::security_group_ingress(&t), &sg, "ingress");
}

#[test]
fn a_separate_ingress_resource_is_reported() {
    let mut t = template();
    let sg = first_of_type(&t, "AWS::EC2::SecurityGroup");
    add_resource(
        &mut t,
        "OpenSsh",
        &format!(
            "Type: AWS::EC2::SecurityGroupIngress\n\
             Properties: {{GroupId: !Ref {sg}, IpProtocol: tcp, FromPort: 22, ToPort: 22, \
             CidrIp: 0.0.0.0/0}}"
        ),
    );

    assert_reported(&policy::security_group_ingress(&t), "OpenSsh", "opens");
}

// ---- instance metadata --------------------------------------------------------------------

#[test]
fn instances_require_imdsv2() {
    assert_clean("IMDSv1", policy::instances_allowing_imdsv1(&template()));
}

#[test]
fn optional_tokens_on_the_build_infrastructure_are_reported() {
    let mut t = template();
    let infra = first_of_type(&t, "AWS::ImageBuilder::InfrastructureConfiguration");
    properties_mut(&mut t, &infra).insert(
        Value::from("InstanceMetadataOptions"),
        yaml("{HttpTokens: optional, HttpPutResponseHopLimit: 1}"),
    );

    assert_reported(&policy::instances_allowing_imdsv1(&t), &infra, "IMDSv1");
}

#[test]
fn a_launch_template_or_instance_without_imdsv2_is_reported() {
    let mut t = template();
    add_resource(
        &mut t,
        "HostTemplate",
        "Type: AWS::EC2::LaunchTemplate\n\
         Properties: {LaunchTemplateData: {MetadataOptions: {HttpTokens: optional}}}",
    );
    add_resource(
        &mut t,
        "LoneHost",
        "Type: AWS::EC2::Instance\nProperties: {InstanceType: t3.micro}",
    );
    add_resource(
        &mut t,
        "TemplatedHost",
        "Type: AWS::EC2::Instance\n\
         Properties: {LaunchTemplate: {LaunchTemplateId: !Ref HostTemplate, Version: '1'}}",
    );

    let violations = policy::instances_allowing_imdsv1(&t);

    assert_reported(&violations, "HostTemplate", "IMDSv1");
    assert_reported(&violations, "LoneHost", "IMDSv1");
    assert!(
        !violations.iter().any(|v| v.starts_with("TemplatedHost:")),
        "an instance is judged by its launch template: {violations:#?}"
    );
}

// ---- encryption ---------------------------------------------------------------------------

#[test]
fn volumes_and_amis_are_encrypted() {
    assert_clean(
        "unencrypted storage",
        policy::unencrypted_storage(&template()),
    );
}

#[test]
fn an_unencrypted_recipe_volume_is_reported() {
    let mut t = template();
    let recipe = first_of_type(&t, "AWS::ImageBuilder::ImageRecipe");
    let mappings = properties_mut(&mut t, &recipe)
        .get_mut("BlockDeviceMappings")
        .and_then(Value::as_sequence_mut)
        .expect("the recipe declares block device mappings");
    let ebs = mappings[0]
        .get_mut("Ebs")
        .and_then(Value::as_mapping_mut)
        .expect("Ebs settings");
    ebs.insert(Value::from("Encrypted"), Value::Bool(false));

    assert_reported(&policy::unencrypted_storage(&t), &recipe, "not encrypted");
}

#[test]
fn a_recipe_without_block_device_mappings_is_reported() {
    let mut t = template();
    let recipe = first_of_type(&t, "AWS::ImageBuilder::ImageRecipe");
    properties_mut(&mut t, &recipe).remove("BlockDeviceMappings");

    assert_reported(
        &policy::unencrypted_storage(&t),
        &recipe,
        "no block device mapping",
    );
}

#[test]
fn an_unencrypted_volume_resource_is_reported() {
    let mut t = template();
    add_resource(
        &mut t,
        "ScratchVolume",
        "Type: AWS::EC2::Volume\n\
         Properties: {AvailabilityZone: us-east-1a, Size: 10, Encrypted: false}",
    );

    assert_reported(
        &policy::unencrypted_storage(&t),
        "ScratchVolume",
        "not encrypted",
    );
}

// ---- IAM ----------------------------------------------------------------------------------

#[test]
fn iam_statements_grant_no_wildcards_and_no_unscoped_writes() {
    let violations =
        policy::wide_iam_grants(&template(), MUTATING_ACTIONS_ALLOWED_ON_EVERY_RESOURCE);
    assert_clean("wide IAM grants", violations);
}

fn add_function_statement(t: &mut Value, function: &str, statement: &str) {
    let policies = properties_mut(t, function)
        .get_mut("Policies")
        .and_then(Value::as_sequence_mut)
        .expect("the function lists its policies");
    policies.push(yaml(&format!("Statement:\n  - {statement}")));
}

#[test]
fn an_added_wildcard_action_is_reported() {
    let mut t = template();
    let function = async_function(&t);
    add_function_statement(
        &mut t,
        &function,
        "{Sid: Everything, Effect: Allow, Action: '*', Resource: '*'}",
    );

    assert_reported(
        &policy::wide_iam_grants(&t, MUTATING_ACTIONS_ALLOWED_ON_EVERY_RESOURCE),
        &function,
        "every action",
    );
}

#[test]
fn a_service_wide_action_is_reported_even_on_a_scoped_resource() {
    let mut t = template();
    let function = async_function(&t);
    add_function_statement(
        &mut t,
        &function,
        "{Effect: Allow, Action: ['ssm:*'], \
         Resource: !Sub 'arn:${AWS::Partition}:ssm:::parameter/x'}",
    );

    assert_reported(
        &policy::wide_iam_grants(&t, MUTATING_ACTIONS_ALLOWED_ON_EVERY_RESOURCE),
        &function,
        "ssm:*",
    );
}

#[test]
fn a_mutating_action_on_every_resource_is_reported_unless_excepted() {
    let mut t = template();
    let function = async_function(&t);
    add_function_statement(
        &mut t,
        &function,
        "{Sid: Loose, Effect: Allow, Action: [ssm:PutParameter, xray:PutTraceSegments, \
         ec2:DescribeInstances], Resource: '*'}",
    );

    let violations = policy::wide_iam_grants(&t, MUTATING_ACTIONS_ALLOWED_ON_EVERY_RESOURCE);

    assert_reported(&violations, &function, "ssm:PutParameter");
    assert!(
        !violations
            .iter()
            .any(|v| v.contains("xray:") || v.contains("DescribeInstances")),
        "excepted and read actions are allowed on every resource: {violations:#?}"
    );
}

#[test]
fn a_sam_policy_template_is_reported() {
    let mut t = template();
    let function = async_function(&t);
    let policies = properties_mut(&mut t, &function)
        .get_mut("Policies")
        .and_then(Value::as_sequence_mut)
        .expect("the function lists its policies");
    policies.push(yaml("DynamoDBCrudPolicy: {TableName: anything}"));

    assert_reported(
        &policy::wide_iam_grants(&t, MUTATING_ACTIONS_ALLOWED_ON_EVERY_RESOURCE),
        &function,
        "DynamoDBCrudPolicy",
    );
}

#[test]
fn build_instances_carry_only_the_two_managed_policies() {
    assert_clean(
        "instance role",
        policy::instance_role_extras(&template(), INSTANCE_ROLE_MANAGED_POLICIES),
    );
}

#[test]
fn an_extra_policy_on_the_instance_role_is_reported() {
    let mut t = template();
    let role = policy::resources_of_type(&t, "AWS::IAM::Role")
        .into_iter()
        .find(|(_, r)| policy::trusts_ec2(r))
        .map(|(id, _)| id.to_string())
        .expect("an instance role");
    let managed = properties_mut(&mut t, &role)
        .get_mut("ManagedPolicyArns")
        .and_then(Value::as_sequence_mut)
        .expect("managed policies");
    managed.push(yaml(
        "!Sub arn:${AWS::Partition}:iam::aws:policy/AmazonS3FullAccess",
    ));

    assert_reported(
        &policy::instance_role_extras(&t, INSTANCE_ROLE_MANAGED_POLICIES),
        &role,
        "AmazonS3FullAccess",
    );
}

// ---- asynchronously invoked functions -----------------------------------------------------

#[test]
fn asynchronous_functions_have_a_failure_destination_an_alarm_and_log_retention() {
    assert_clean(
        "async functions",
        policy::async_functions_without_safety_nets(&template()),
    );
}

#[test]
fn a_missing_failure_destination_is_reported() {
    let mut t = template();
    let function = async_function(&t);
    properties_mut(&mut t, &function)
        .get_mut("EventInvokeConfig")
        .and_then(Value::as_mapping_mut)
        .expect("the function has an EventInvokeConfig")
        .remove("DestinationConfig");

    assert_reported(
        &policy::async_functions_without_safety_nets(&t),
        &function,
        "OnFailure",
    );
}

#[test]
fn a_missing_errors_alarm_is_reported() {
    let mut t = template();
    let function = async_function(&t);
    let alarms: Vec<String> = policy::resources_of_type(&t, "AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, a)| {
            a.get("Properties")
                .is_some_and(|p| policy::refers_to(p, &function))
        })
        .map(|(id, _)| id.to_string())
        .collect();
    assert!(!alarms.is_empty(), "the template alarms on {function}");
    for alarm in alarms {
        resources_mut(&mut t).remove(alarm.as_str());
    }

    assert_reported(
        &policy::async_functions_without_safety_nets(&t),
        &function,
        "Errors",
    );
}

#[test]
fn an_alarm_without_actions_is_reported() {
    let mut t = template();
    let function = async_function(&t);
    let alarm = policy::resources_of_type(&t, "AWS::CloudWatch::Alarm")
        .into_iter()
        .find(|(_, a)| {
            a.get("Properties")
                .is_some_and(|p| policy::refers_to(p, &function))
        })
        .map(|(id, _)| id.to_string())
        .expect("an alarm on the function");
    properties_mut(&mut t, &alarm).remove("AlarmActions");

    assert_reported(
        &policy::async_functions_without_safety_nets(&t),
        &alarm,
        "AlarmActions",
    );
}

#[test]
fn missing_log_retention_is_reported() {
    let mut t = template();
    let function = async_function(&t);
    let groups: Vec<String> = policy::resources_of_type(&t, "AWS::Logs::LogGroup")
        .into_iter()
        .map(|(id, _)| id.to_string())
        .collect();
    for group in &groups {
        properties_mut(&mut t, group).remove("RetentionInDays");
    }

    let violations = policy::async_functions_without_safety_nets(&t);

    assert!(
        violations
            .iter()
            .any(|v| v.contains("RetentionInDays") && v.contains(&function)),
        "expected the function's log group without retention to be reported: {violations:#?}"
    );
}

#[test]
fn a_function_without_a_log_group_is_reported() {
    let mut t = template();
    let function = async_function(&t);
    let groups: Vec<String> = policy::resources_of_type(&t, "AWS::Logs::LogGroup")
        .into_iter()
        .map(|(id, _)| id.to_string())
        .collect();
    for group in &groups {
        resources_mut(&mut t).remove(group.as_str());
    }

    assert_reported(
        &policy::async_functions_without_safety_nets(&t),
        &function,
        "no log group",
    );
}
