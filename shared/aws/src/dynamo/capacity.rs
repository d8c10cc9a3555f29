//! What each DynamoDB request consumes, per table, for the benchmark's cost
//! figures (the homes' own clients do not carry this meter).
//!
//! * Reads: what DynamoDB answers to `ReturnConsumedCapacity = TOTAL`,
//!   which the interceptor asks of every request.
//! * Writes: counted by DynamoDB's billing rule from the request itself,
//!   because DynamoDB Local reports a whole transaction as a couple of
//!   units. A put costs a unit per KB of its item; an update or a delete
//!   one unit (every bealert item is under 1 KB); a transaction twice its
//!   actions' units; a condition check inside one, like a write.

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::{
    batch_get_item::{BatchGetItemInput, BatchGetItemOutput},
    batch_write_item::BatchWriteItemInput,
    delete_item::DeleteItemInput,
    get_item::{GetItemInput, GetItemOutput},
    put_item::PutItemInput,
    query::{QueryInput, QueryOutput},
    scan::{ScanInput, ScanOutput},
    transact_get_items::{TransactGetItemsInput, TransactGetItemsOutput},
    transact_write_items::TransactWriteItemsInput,
    update_item::UpdateItemInput,
};
use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::box_error::BoxError;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Capacity units consumed on one table, and the requests that did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Units {
    pub read: f64,
    pub write: f64,
    pub requests: u64,
}

impl Units {
    /// What was consumed between `before` and `self`.
    pub fn since(&self, before: &Units) -> Units {
        Units {
            read: self.read - before.read,
            write: self.write - before.write,
            requests: self.requests - before.requests,
        }
    }
}

/// Consumed capacity so far, by table name and operation.
#[derive(Debug, Default)]
pub struct CapacityMeter {
    tables: Mutex<BTreeMap<(String, &'static str), Units>>,
}

impl CapacityMeter {
    /// Consumed capacity by table.
    pub fn snapshot(&self) -> BTreeMap<String, Units> {
        let mut out: BTreeMap<String, Units> = BTreeMap::new();
        for ((table, _), u) in self.by_operation() {
            let t = out.entry(table).or_default();
            t.read += u.read;
            t.write += u.write;
            t.requests += u.requests;
        }
        out
    }

    /// Consumed capacity by table and operation (`PutItem`,
    /// `TransactWriteItems`, ...): where a table's units go.
    pub fn by_operation(&self) -> BTreeMap<(String, &'static str), Units> {
        self.tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Adds the read units a request's answer reports.
    fn add_reads(&self, op: &'static str, consumed: &[ConsumedCapacity]) {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        for c in consumed {
            let u = tables
                .entry((c.table_name.clone().unwrap_or_default(), op))
                .or_default();
            u.requests += 1;
            u.read += c.read_capacity_units.or(c.capacity_units).unwrap_or(0.0);
        }
    }

    fn add_writes(&self, table: &str, op: &'static str, units: f64) {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let u = tables.entry((table.to_string(), op)).or_default();
        u.write += units;
        u.requests += 1;
    }
}

/// An attribute value's size as DynamoDB bills it (bytes, near enough).
fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.iter().map(String::len).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(m) => 3 + item_size(m),
        _ => 1,
    }
}

/// An item's size as DynamoDB bills it (bytes, near enough).
pub(crate) fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// Write units of a put: one per KB of the item, at least one.
fn put_units(item: &HashMap<String, AttributeValue>) -> f64 {
    item_size(item).div_ceil(1024).max(1) as f64
}

/// A DynamoDB client whose every request reports what it consumed to `meter`.
pub fn metered_client(
    client: &aws_sdk_dynamodb::Client,
    meter: Arc<CapacityMeter>,
) -> aws_sdk_dynamodb::Client {
    let conf = client
        .config()
        .to_builder()
        .interceptor(Metered(meter))
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// An operation's name from its output type (`GetItemOutput`: `GetItem`).
fn op_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    let short = full.rsplit("::").next().unwrap_or(full);
    short.strip_suffix("Output").unwrap_or(short)
}

#[derive(Debug)]
struct Metered(Arc<CapacityMeter>);

impl Intercept for Metered {
    fn name(&self) -> &'static str {
        "bealert-capacity-meter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        // Writes, by the billing rule (see the module's note).
        if let Some(i) = input.downcast_ref::<PutItemInput>() {
            let units = i.item.as_ref().map_or(1.0, put_units);
            self.0.add_writes(
                i.table_name.as_deref().unwrap_or_default(),
                "PutItem",
                units,
            );
        } else if let Some(i) = input.downcast_ref::<UpdateItemInput>() {
            self.0.add_writes(
                i.table_name.as_deref().unwrap_or_default(),
                "UpdateItem",
                1.0,
            );
        } else if let Some(i) = input.downcast_ref::<DeleteItemInput>() {
            self.0.add_writes(
                i.table_name.as_deref().unwrap_or_default(),
                "DeleteItem",
                1.0,
            );
        } else if let Some(i) = input.downcast_ref::<BatchWriteItemInput>() {
            for (table, requests) in i.request_items.iter().flatten() {
                let units: f64 = requests
                    .iter()
                    .map(|r| r.put_request.as_ref().map_or(1.0, |p| put_units(&p.item)))
                    .sum();
                self.0.add_writes(table, "BatchWriteItem", units);
            }
        } else if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
            let mut by_table: BTreeMap<&str, f64> = BTreeMap::new();
            for item in i.transact_items.iter().flatten() {
                let (table, units) = if let Some(p) = &item.put {
                    (p.table_name.as_str(), put_units(&p.item))
                } else if let Some(u) = &item.update {
                    (u.table_name.as_str(), 1.0)
                } else if let Some(d) = &item.delete {
                    (d.table_name.as_str(), 1.0)
                } else if let Some(c) = &item.condition_check {
                    (c.table_name.as_str(), 1.0)
                } else {
                    continue;
                };
                *by_table.entry(table).or_default() += 2.0 * units;
            }
            for (table, units) in by_table {
                self.0.add_writes(table, "TransactWriteItems", units);
            }
        }
        macro_rules! total {
            ($($t:ty),*) => {$(
                if let Some(i) = input.downcast_mut::<$t>() {
                    i.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
                    return Ok(());
                }
            )*};
        }
        total!(
            GetItemInput,
            PutItemInput,
            UpdateItemInput,
            DeleteItemInput,
            QueryInput,
            ScanInput,
            BatchGetItemInput,
            BatchWriteItemInput,
            TransactGetItemsInput,
            TransactWriteItemsInput
        );
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        macro_rules! one {
            ($($t:ty),*) => {$(
                if let Some(o) = output.downcast_ref::<$t>() {
                    self.0.add_reads(op_name::<$t>(), o.consumed_capacity.as_slice());
                    return Ok(());
                }
            )*};
        }
        macro_rules! many {
            ($($t:ty),*) => {$(
                if let Some(o) = output.downcast_ref::<$t>() {
                    self.0.add_reads(op_name::<$t>(), o.consumed_capacity.as_deref().unwrap_or_default());
                    return Ok(());
                }
            )*};
        }
        // Writes were counted from their requests.
        one!(GetItemOutput, QueryOutput, ScanOutput);
        many!(BatchGetItemOutput, TransactGetItemsOutput);
        Ok(())
    }
}
