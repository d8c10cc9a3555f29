//! Alert templates: `GET/PUT /v1/alert-templates/{name}`, `GET
//! /v1/alert-templates`, and alerts that name one (`"template"`,
//! `"values"`).

use super::App;
use crate::AppError;
use crate::error::parse_body;
use bealert_core::ValidationErrors;
use bealert_core::operator::Operator;
use bealert_core::template::{AlertTemplate, validate_name};
use std::collections::BTreeMap;

const KIND: &str = "template";

/// A template as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TemplateView {
    pub name: String,
    #[serde(flatten)]
    pub template: AlertTemplate,
    /// The values an alert from it must give.
    pub placeholders: Vec<String>,
}

impl App {
    /// `PUT /v1/alert-templates/{name}`: national operators prepare
    /// templates; `true` if it was new.
    pub async fn put_template(
        &self,
        operator: &Operator,
        name: &str,
        body: &[u8],
    ) -> Result<(TemplateView, bool), AppError> {
        if !operator.may(bealert_core::operator::Task::Templates) {
            return Err(AppError::Forbidden(
                "alert templates are prepared by national operators; use them with \"template\" in an alert".into(),
            ));
        }
        validate_name(name).map_err(|e| ValidationErrors::single("name", e))?;
        let template = parse_body::<AlertTemplate>(body)?;
        template.validate()?;
        let json =
            serde_json::to_value(&template).map_err(|e| AppError::Internal(e.to_string()))?;
        let new = self
            .ports
            .documents
            .get_document(KIND, name)
            .await?
            .is_none();
        self.ports.documents.put_document(KIND, name, &json).await?;
        Ok((view(name, template), new))
    }

    pub async fn template(&self, name: &str) -> Result<TemplateView, AppError> {
        let not_found = || AppError::NotFound(format!("no alert template is named {name:?}"));
        let json = self
            .ports
            .documents
            .get_document(KIND, name)
            .await?
            .ok_or_else(not_found)?;
        let t = serde_json::from_value(json).map_err(|e| AppError::Internal(e.to_string()))?;
        Ok(view(name, t))
    }

    pub async fn templates(&self) -> Result<Vec<TemplateView>, AppError> {
        self.ports
            .documents
            .documents(KIND, "")
            .await?
            .into_iter()
            .map(|(name, json)| {
                serde_json::from_value(json)
                    .map(|t| view(&name, t))
                    .map_err(|e| AppError::Internal(e.to_string()))
            })
            .collect()
    }

    /// An alert request naming a template gets its blanks filled; any
    /// other passes unchanged.
    pub(crate) async fn with_template(&self, body: &[u8]) -> Result<Option<Vec<u8>>, AppError> {
        let Ok(serde_json::Value::Object(mut request)) = serde_json::from_slice(body) else {
            return Ok(None);
        };
        let Some(name) = request.remove("template") else {
            return Ok(None);
        };
        let values: BTreeMap<String, String> = match request.remove("values") {
            None => BTreeMap::new(),
            Some(v) => serde_json::from_value(v).map_err(|_| {
                ValidationErrors::single(
                    "values",
                    "give the placeholders' values as strings, e.g. {\"river\": \"Maas\"}",
                )
            })?,
        };
        let Some(name) = name.as_str() else {
            return Err(
                ValidationErrors::single("template", "name a template, e.g. \"flood\"").into(),
            );
        };
        let template = self.template(name).await.map_err(|e| match e {
            AppError::NotFound(why) => ValidationErrors::single("template", why).into(),
            other => other,
        })?;
        template.template.fill(&mut request, &values)?;
        Ok(Some(
            serde_json::to_vec(&request).map_err(|e| AppError::Internal(e.to_string()))?,
        ))
    }
}

fn view(name: &str, template: AlertTemplate) -> TemplateView {
    TemplateView {
        name: name.to_string(),
        placeholders: template.all_placeholders().into_iter().collect(),
        template,
    }
}
