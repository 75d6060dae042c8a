//! The EC2 response document: `<{Action}Response xmlns=...>` with its
//! `requestId`, written straight into a string. Element names are always
//! literals of this module's callers; only text goes through escaping.

use std::fmt::{Display, Write};

use crate::s3::xml::escape_into;

/// The namespace of the API version nuage answers (botocore's).
pub const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// A response being written.
#[derive(Debug)]
pub struct Xml {
    out: String,
    root: String,
}

impl Xml {
    /// Opens `<{action}Response>` and writes the request id.
    pub fn new(action: &str, request_id: &str) -> Xml {
        let root = format!("{action}Response");
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
        out.push_str(&root);
        out.push_str(" xmlns=\"");
        out.push_str(NAMESPACE);
        out.push_str("\">");
        let mut x = Xml { out, root };
        x.text("requestId", request_id);
        x
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `<name>text</name>`, escaped.
    pub fn text(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name);
        escape_into(&mut self.out, text);
        self.close(name)
    }

    /// `<name>text</name>` when there is a value, nothing otherwise (EC2
    /// leaves absent fields out rather than empty).
    pub fn opt(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.text(name, t);
        }
        self
    }

    /// A number or other value written with `Display`.
    pub fn display(&mut self, name: &str, value: impl Display) -> &mut Self {
        self.open(name);
        let _ = write!(self.out, "{value}");
        self.close(name)
    }

    pub fn bool(&mut self, name: &str, value: bool) -> &mut Self {
        self.text(name, if value { "true" } else { "false" })
    }

    /// `<name><item>...</item>...</name>`: EC2's list shape, each item
    /// written by `each`. An empty list is written as `<name></name>`,
    /// so clients see an empty list rather than a missing one.
    pub fn items<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Xml, T),
    ) -> &mut Self {
        self.open(name);
        for it in items {
            self.open("item");
            each(self, it);
            self.close("item");
        }
        self.close(name)
    }

    /// `<name><item>text</item>...</name>`: a list of strings.
    pub fn strings<'a>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = &'a str>,
    ) -> &mut Self {
        self.open(name);
        for it in items {
            self.text("item", it);
        }
        self.close(name)
    }

    /// `<tagSet>` of key/value items (left out when there are no tags, as
    /// EC2 does).
    pub fn tag_set<'a>(
        &mut self,
        tags: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> &mut Self {
        let mut tags = tags.into_iter().peekable();
        if tags.peek().is_none() {
            return self;
        }
        self.items("tagSet", tags, |x, (k, v)| {
            x.text("key", k).text("value", v);
        })
    }

    /// Closes the root and gives the document.
    pub fn finish(mut self) -> String {
        let root = std::mem::take(&mut self.root);
        self.close(&root);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_ec2_shape() {
        let mut x = Xml::new("DescribeRegions", "r-1");
        x.items("regionInfo", ["a<b"], |x, name| {
            x.text("regionName", name);
        });
        x.items("empty", Vec::<&str>::new(), |_, _| {});
        let doc = x.finish();
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeRegionsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r-1</requestId><regionInfo><item><regionName>a&lt;b</regionName></item></regionInfo><empty></empty></DescribeRegionsResponse>"
        );
    }
}
