//! The IR's XML: layers with their ports and data attributes, and the edges between ports.
//!
//! Only what the conversion reads is kept; every number is parsed here so that a malformed file fails with
//! the layer and attribute it is in.

use std::collections::HashMap;

use crate::IrError;

/// IR versions read: 10 and 11 (OpenVINO 2020.4 onwards) share the layer and edge layout.
pub const VERSIONS: [u32; 2] = [10, 11];

/// A parsed `<net>`.
#[derive(Debug)]
pub struct Net {
    /// The net's name.
    pub name: String,
    /// Layers in file order.
    pub layers: Vec<Layer>,
    /// Edges: (from layer, from port) → (to layer, to port).
    pub edges: Vec<Edge>,
}

/// One `<layer>`.
#[derive(Debug)]
pub struct Layer {
    /// `id`, unique in the net.
    pub id: u64,
    /// `name`.
    pub name: String,
    /// `type` ("Convolution").
    pub kind: String,
    /// The `<data>` attributes.
    pub data: HashMap<String, String>,
    /// Input ports in port order.
    pub inputs: Vec<Port>,
    /// Output ports in port order.
    pub outputs: Vec<Port>,
}

/// One `<port>`.
#[derive(Debug, Clone)]
pub struct Port {
    /// `id`, unique in its layer.
    pub id: u64,
    /// Tensor names (`names`, IR 11), first the one the framework gave.
    pub names: Vec<String>,
    /// `<dim>`s; -1 is a dynamic dimension.
    pub dims: Vec<i64>,
    /// `precision` ("FP32", "I64"), when given.
    pub precision: Option<String>,
}

/// One `<edge>`.
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    /// Producing layer and its output port.
    pub from: (u64, u64),
    /// Consuming layer and its input port.
    pub to: (u64, u64),
}

impl Layer {
    /// Data attribute `key`, or an error naming the layer.
    pub fn attr(&self, key: &str) -> Result<&str, IrError> {
        self.data
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| self.malformed(&format!("no data attribute '{key}'")))
    }

    /// A comma-separated integer list attribute ("1, 1"), empty for "".
    pub fn ints(&self, key: &str) -> Result<Vec<i64>, IrError> {
        let text = self.attr(key)?;
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<i64>().map_err(|_| {
                    self.malformed(&format!("{key}=\"{text}\" is not a list of integers"))
                })
            })
            .collect()
    }

    /// An integer attribute.
    pub fn int(&self, key: &str) -> Result<i64, IrError> {
        let text = self.attr(key)?;
        text.trim()
            .parse()
            .map_err(|_| self.malformed(&format!("{key}=\"{text}\" is not an integer")))
    }

    /// A float attribute.
    pub fn float(&self, key: &str) -> Result<f32, IrError> {
        let text = self.attr(key)?;
        text.trim()
            .parse()
            .map_err(|_| self.malformed(&format!("{key}=\"{text}\" is not a number")))
    }

    /// A boolean attribute ("true"/"false"), `default` when absent.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, IrError> {
        match self.data.get(key).map(|s| s.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(s) if s == "true" || s == "1" => Ok(true),
            Some(s) if s == "false" || s == "0" => Ok(false),
            Some(s) => Err(self.malformed(&format!("{key}=\"{s}\" is not true or false"))),
        }
    }

    /// An error about this layer.
    pub fn malformed(&self, why: &str) -> IrError {
        IrError::Malformed(format!(
            "layer {} '{}' ({}): {why}",
            self.id, self.name, self.kind
        ))
    }
}

/// Parses the XML text of an IR.
pub fn parse(text: &str) -> Result<Net, IrError> {
    let document = roxmltree::Document::parse(text).map_err(|e| IrError::Xml(e.to_string()))?;
    let root = document.root_element();
    if root.tag_name().name() != "net" {
        return Err(IrError::Malformed(format!(
            "the root element is <{}>, not <net>",
            root.tag_name().name()
        )));
    }
    let version = root
        .attribute("version")
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| IrError::Malformed("<net> has no numeric version".into()))?;
    if !VERSIONS.contains(&version) {
        return Err(IrError::Version(version));
    }
    let child = |name: &str| root.children().find(|n| n.has_tag_name(name));
    let layers = child("layers")
        .ok_or_else(|| IrError::Malformed("<net> has no <layers>".into()))?
        .children()
        .filter(|n| n.has_tag_name("layer"))
        .map(layer)
        .collect::<Result<Vec<_>, _>>()?;
    let edges = match child("edges") {
        Some(edges) => edges
            .children()
            .filter(|n| n.has_tag_name("edge"))
            .map(edge)
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    Ok(Net {
        name: root.attribute("name").unwrap_or("ir").to_owned(),
        layers,
        edges,
    })
}

fn number(node: roxmltree::Node, key: &str) -> Result<u64, IrError> {
    node.attribute(key)
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            IrError::Malformed(format!(
                "<{}> (line {}) has no numeric '{key}'",
                node.tag_name().name(),
                node.document().text_pos_at(node.range().start).row
            ))
        })
}

fn layer(node: roxmltree::Node) -> Result<Layer, IrError> {
    let id = number(node, "id")?;
    let kind = node
        .attribute("type")
        .ok_or_else(|| IrError::Malformed(format!("layer {id} has no type")))?
        .to_owned();
    let data = node
        .children()
        .find(|n| n.has_tag_name("data"))
        .map(|d| {
            d.attributes()
                .map(|a| (a.name().to_owned(), a.value().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let ports = |section: &str| -> Result<Vec<Port>, IrError> {
        let mut ports = match node.children().find(|n| n.has_tag_name(section)) {
            Some(s) => s
                .children()
                .filter(|n| n.has_tag_name("port"))
                .map(port)
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        ports.sort_by_key(|p| p.id);
        Ok(ports)
    };
    Ok(Layer {
        id,
        name: node.attribute("name").unwrap_or_default().to_owned(),
        kind,
        data,
        inputs: ports("input")?,
        outputs: ports("output")?,
    })
}

fn port(node: roxmltree::Node) -> Result<Port, IrError> {
    let dims = node
        .children()
        .filter(|n| n.has_tag_name("dim"))
        .map(|d| {
            d.text()
                .and_then(|t| t.trim().parse::<i64>().ok())
                .filter(|&v| v >= -1)
                .ok_or_else(|| {
                    IrError::Malformed(format!(
                        "a <dim> of '{}' is not a dimension",
                        d.text().unwrap_or("")
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Port {
        id: number(node, "id")?,
        names: node.attribute("names").map(split_names).unwrap_or_default(),
        dims,
        precision: node.attribute("precision").map(str::to_owned),
    })
}

/// The `names` list: comma-separated, a comma inside a name escaped as `\,`.
fn split_names(text: &str) -> Vec<String> {
    let mut names = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => names.last_mut().unwrap().extend(chars.next()),
            ',' => names.push(String::new()),
            c => names.last_mut().unwrap().push(c),
        }
    }
    names
        .into_iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect()
}

fn edge(node: roxmltree::Node) -> Result<Edge, IrError> {
    Ok(Edge {
        from: (number(node, "from-layer")?, number(node, "from-port")?),
        to: (number(node, "to-layer")?, number(node, "to-port")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_on_unescaped_commas() {
        assert_eq!(split_names("a, b\\,c,"), vec!["a", "b,c"]);
    }
}
