//! Creates bealert's tables (for LocalStack/DynamoDB Local and development;
//! in AWS the SAM template creates them).

use super::Tables;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

/// Creates every table that does not exist yet; pk/sk strings, on demand.
pub async fn create_tables(client: &Client, tables: &Tables) -> Result<(), String> {
    let existing = client
        .list_tables()
        .send()
        .await
        .map_err(|e| format!("listing tables: {}", super::sdk_err(e)))?
        .table_names
        .unwrap_or_default();
    let names = [
        &tables.subscribers,
        &tables.alerts,
        &tables.deliveries,
        &tables.operators,
        &tables.registrations,
        &tables.networks,
        &tables.geography,
    ];
    for name in names.into_iter().filter(|n| !existing.contains(n)) {
        if name == &tables.deliveries {
            create_with_provider_index(client, name).await?;
        } else {
            create(client, name).await?;
        }
    }
    Ok(())
}

/// The deliveries table: pk/sk, and the index receipts find a delivery by
/// (its provider's message id `pid`, with `prov`), as the template has it.
pub async fn create_with_provider_index(client: &Client, name: &str) -> Result<(), String> {
    use aws_sdk_dynamodb::types::{GlobalSecondaryIndex, Projection, ProjectionType};
    let err = |e: aws_sdk_dynamodb::error::BuildError| e.to_string();
    let index = GlobalSecondaryIndex::builder()
        .index_name(super::deliveries::PROVIDER_ID_INDEX)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pid")
                .key_type(KeyType::Hash)
                .build()
                .map_err(err)?,
        )
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes("prov")
                .build(),
        )
        .build()
        .map_err(err)?;
    request(client, name, err)?
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pid")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(err)?,
        )
        .global_secondary_indexes(index)
        .send()
        .await
        .map_err(|e| format!("creating table {name}: {}", super::sdk_err(e)))?;
    Ok(())
}

/// Creates one pk/sk table (the shape of every bealert table).
pub async fn create(client: &Client, name: &str) -> Result<(), String> {
    let err = |e: aws_sdk_dynamodb::error::BuildError| e.to_string();
    request(client, name, err)?
        .send()
        .await
        .map_err(|e| format!("creating table {name}: {}", super::sdk_err(e)))?;
    Ok(())
}

fn request(
    client: &Client,
    name: &str,
    err: impl Fn(aws_sdk_dynamodb::error::BuildError) -> String + Copy,
) -> Result<aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder, String> {
    Ok(client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(err)?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(err)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .map_err(err)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .map_err(err)?,
        ))
}
