//! Plots and files a run leaves behind, read from archives the backend copies out.
//!
//! The session fetches a directory as a tar; this module turns it into bounded lists of files
//! ([`read_files`]) and plots ([`plots_from`]). Nothing here trusts the archive: only regular
//! files with plain relative names are read, and everything else is reported as omitted.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;
use std::sync::LazyLock;

use base64::Engine as _;
use regex::bytes::Regex;
use serde::{Serialize, Serializer};

use crate::archive::map_member;
use crate::error::{Error, Result};

/// The format figures are captured in when a program shows them (`plt.show()`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlotFormat {
    /// PNG (the default).
    #[default]
    Png,
    /// JPEG.
    Jpeg,
    /// SVG.
    Svg,
    /// PDF.
    Pdf,
}

impl PlotFormat {
    /// The lowercase name, which is also the file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            PlotFormat::Png => "png",
            PlotFormat::Jpeg => "jpeg",
            PlotFormat::Svg => "svg",
            PlotFormat::Pdf => "pdf",
        }
    }
}

impl fmt::Display for PlotFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PlotFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "png" => Ok(PlotFormat::Png),
            "jpeg" | "jpg" => Ok(PlotFormat::Jpeg),
            "svg" => Ok(PlotFormat::Svg),
            "pdf" => Ok(PlotFormat::Pdf),
            _ => Err(Error::invalid(format!(
                "`{s}` is not a plot format (png, jpeg, svg or pdf)"
            ))),
        }
    }
}

/// How much one run may return, per kind (plots, files of the output folder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactLimits {
    /// At most this many files.
    pub max_files: usize,
    /// At most this many bytes of content in all.
    pub max_bytes: u64,
}

impl Default for ArtifactLimits {
    /// 100 files and 64 MiB.
    fn default() -> Self {
        ArtifactLimits {
            max_files: 100,
            max_bytes: 64 << 20,
        }
    }
}

impl ArtifactLimits {
    /// Why one more file of `size` bytes does not fit beside `files` files of `bytes` bytes in
    /// all; `None` when it fits.
    pub(crate) fn refuses(&self, files: usize, bytes: u64, size: u64) -> Option<String> {
        if files >= self.max_files {
            Some(format!("over the limit of {} files", self.max_files))
        } else if bytes + size > self.max_bytes {
            Some(format!("over the limit of {} bytes", self.max_bytes))
        } else {
            None
        }
    }
}

/// A file a run wrote under the session's output folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifact {
    /// The path relative to the output folder, e.g. `report/summary.csv`.
    pub name: String,
    /// The media type guessed from the name, e.g. `text/csv`.
    pub media_type: String,
    /// The size in bytes.
    pub size: u64,
    /// The content (base64 in JSON, as `content_base64`).
    #[serde(rename = "content_base64", serialize_with = "as_base64")]
    pub content: Vec<u8>,
}

/// Something a run produced that was not returned, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Omitted {
    /// What was left out: a path in the sandbox, or a plot.
    pub name: String,
    /// Its size in bytes, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Why, and where it can still be found.
    pub reason: String,
}

fn as_base64<S: Serializer>(content: &[u8], serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(content))
}

/// A regular file read from a collected archive; `name` is relative to the collected directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CollectedFile {
    pub name: String,
    pub content: Vec<u8>,
}

/// Reads the regular files of `tar` (whose top entry is the directory `top`), in archive order,
/// within `limits`. What is skipped is added to `omitted` (at most a few entries per reason,
/// then a count); `location` names the directory in the sandbox for those messages.
pub(crate) fn read_files(
    tar: &[u8],
    top: &str,
    location: &str,
    limits: ArtifactLimits,
    omitted: &mut Vec<Omitted>,
) -> Result<Vec<CollectedFile>> {
    let reading = |e| Error::io(format!("reading the files of {location}"), e);
    let mut files = Vec::new();
    let mut bytes = 0u64;
    let mut left_out = LeftOut::default();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(reading)? {
        let mut entry = entry.map_err(reading)?;
        let member = entry.path().map_err(reading)?.into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        let size = entry.header().size().unwrap_or(0);
        // A file copied out on its own is the archive's only member, named `top`.
        let Some(name) = map_member(&member, top, Path::new(""))
            .and_then(|p| p.to_str().map(str::to_string))
            .map(|n| if n.is_empty() { top.to_string() } else { n })
            .filter(|n| n != top || !kind.is_dir())
        else {
            left_out.add(
                format!("{location}/{}", member.display()),
                None,
                "a name outside the folder".into(),
            );
            continue;
        };
        let path = format!("{location}/{name}");
        if !kind.is_file() {
            left_out.add(path, None, "not a regular file".into());
        } else if let Some(reason) = limits.refuses(files.len(), bytes, size) {
            left_out.add(path, Some(size), reason);
        } else {
            let mut content = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut content).map_err(reading)?;
            bytes += content.len() as u64;
            files.push(CollectedFile { name, content });
        }
    }
    left_out.report(omitted);
    Ok(files)
}

/// Omissions grouped by reason: the first few by name, then a count.
#[derive(Default)]
pub(crate) struct LeftOut {
    by_reason: BTreeMap<String, Vec<(String, Option<u64>)>>,
}

impl LeftOut {
    const NAMED: usize = 10;

    pub(crate) fn add(&mut self, name: String, size: Option<u64>, reason: String) {
        self.by_reason.entry(reason).or_default().push((name, size));
    }

    pub(crate) fn report(self, omitted: &mut Vec<Omitted>) {
        for (reason, items) in self.by_reason {
            let more = items.len().saturating_sub(Self::NAMED);
            for (name, size) in items.into_iter().take(Self::NAMED) {
                omitted.push(Omitted {
                    name,
                    size,
                    reason: format!("{reason}; left in the sandbox"),
                });
            }
            if more > 0 {
                omitted.push(Omitted {
                    name: format!("{more} more files"),
                    size: None,
                    reason: format!("{reason}; left in the sandbox"),
                });
            }
        }
    }
}

/// Turns collected files into artifacts with media types.
pub(crate) fn artifacts_from(files: Vec<CollectedFile>) -> Vec<Artifact> {
    files
        .into_iter()
        .map(|file| Artifact {
            media_type: mime_guess::from_path(&file.name)
                .first_or_octet_stream()
                .essence_str()
                .to_string(),
            size: file.content.len() as u64,
            name: file.name,
            content: file.content,
        })
        .collect()
}

/// One captured plot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlotOutput {
    /// The image format, e.g. `png`.
    pub format: String,
    /// The file content, base64-encoded.
    pub content_base64: String,
    /// Width in pixels (vector formats: at `dpi`, else at 96 pixels per inch).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Resolution, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpi: Option<u32>,
}

impl PlotOutput {
    /// The decoded file content.
    pub fn content(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.content_base64)
            .expect("plots are encoded by the library")
    }
}

/// What the capture hook says of one plot (`<n>.json`).
#[derive(Debug, Default, serde::Deserialize)]
struct PlotMeta {
    format: String,
    width: Option<f64>,
    height: Option<f64>,
    dpi: Option<f64>,
}

/// Pairs the capture hook's `<n>.<format>` files with their `<n>.json`, in capture order.
///
/// Width and height come from the image itself where its format says (raster headers, SVG
/// attributes, PDF page box), else from the hook. Capture errors the hook recorded are returned
/// as messages for the log.
pub(crate) fn plots_from(
    files: Vec<CollectedFile>,
    omitted: &mut Vec<Omitted>,
) -> (Vec<PlotOutput>, Vec<String>) {
    let mut errors = Vec::new();
    let mut metas = BTreeMap::new();
    let mut contents = BTreeMap::new();
    for file in files {
        if file.name == "errors.txt" {
            errors.push(String::from_utf8_lossy(&file.content).into_owned());
            continue;
        }
        let Some((stem, extension)) = file.name.rsplit_once('.') else {
            continue;
        };
        let Ok(number) = stem.parse::<u64>() else {
            continue;
        };
        if extension == "json" {
            match serde_json::from_slice::<PlotMeta>(&file.content) {
                Ok(meta) => {
                    metas.insert(number, meta);
                }
                Err(e) => errors.push(format!("plot {number}: unreadable description: {e}")),
            }
        } else {
            contents.insert(number, file.content);
        }
    }
    let mut plots = Vec::new();
    for (number, meta) in metas {
        if !plain_format(&meta.format) {
            omitted.push(Omitted {
                name: format!("plot {number}"),
                size: None,
                reason: format!("its format {:?} is not a plain name", meta.format),
            });
            continue;
        }
        let Some(content) = contents.remove(&number) else {
            omitted.push(Omitted {
                name: format!("plot {number} ({})", meta.format),
                size: None,
                reason: "its image was not collected (see the other omissions)".into(),
            });
            continue;
        };
        plots.push(plot(meta, content));
    }
    (plots, errors)
}

/// Whether a format the sandbox described is a plain name (`png`, `svg`, `webp`, …): never a
/// path, an escape sequence or anything but a short run of ASCII letters and digits.
fn plain_format(format: &str) -> bool {
    (1..=16).contains(&format.len()) && format.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn plot(meta: PlotMeta, content: Vec<u8>) -> PlotOutput {
    let dpi = meta.dpi.filter(|d| *d > 0.0);
    let (width, height) = dimensions(&meta.format, &content, dpi)
        .or_else(|| Some((meta.width?, meta.height?)))
        .unwrap_or((0.0, 0.0));
    PlotOutput {
        format: meta.format,
        content_base64: base64::engine::general_purpose::STANDARD.encode(&content),
        width: width.round() as u32,
        height: height.round() as u32,
        dpi: dpi.map(|d| d.round() as u32),
    }
}

/// The pixel size an image's own bytes give. Vector formats are in points (1/72 inch), so
/// they are converted at `dpi` (96, the CSS pixel, when unknown).
fn dimensions(format: &str, content: &[u8], dpi: Option<f64>) -> Option<(f64, f64)> {
    let points_to_pixels = dpi.unwrap_or(96.0) / 72.0;
    match format {
        "svg" => {
            let (width, height) = svg_size(content)?;
            Some((width * points_to_pixels, height * points_to_pixels))
        }
        "pdf" => {
            let captures = MEDIA_BOX.captures(content)?;
            let number = |i| -> Option<f64> {
                std::str::from_utf8(captures.get(i)?.as_bytes())
                    .ok()?
                    .parse()
                    .ok()
            };
            let width = number(3)? - number(1)?;
            let height = number(4)? - number(2)?;
            Some((width * points_to_pixels, height * points_to_pixels))
        }
        "html" => None,
        _ => {
            let size = imagesize::blob_size(content).ok()?;
            Some((size.width as f64, size.height as f64))
        }
    }
}

static MEDIA_BOX: LazyLock<Regex> = LazyLock::new(|| {
    let number = r"(-?[0-9]+(?:\.[0-9]*)?)";
    Regex::new(&format!(
        r"/MediaBox\s*\[\s*{number}\s+{number}\s+{number}\s+{number}\s*\]"
    ))
    .expect("valid regex")
});
static SVG_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<svg\b[^>]*>").expect("valid regex"));
static SVG_LENGTH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\s(width|height)\s*=\s*["']\s*([0-9]+(?:\.[0-9]*)?)\s*(pt|px|in|cm|mm)?\s*["']"#)
        .expect("valid regex")
});

/// The width and height of an SVG's root element, in points.
fn svg_size(content: &[u8]) -> Option<(f64, f64)> {
    let tag = SVG_TAG.find(content)?.as_bytes();
    let (mut width, mut height) = (None, None);
    for captures in SVG_LENGTH.captures_iter(tag) {
        let value: f64 = std::str::from_utf8(&captures[2]).ok()?.parse().ok()?;
        let points = value
            * match captures.get(3).map(|u| u.as_bytes()) {
                Some(b"pt") => 1.0,
                Some(b"in") => 72.0,
                Some(b"cm") => 72.0 / 2.54,
                Some(b"mm") => 72.0 / 25.4,
                _ => 0.75, // px (also unitless): 1 px = 0.75 pt
            };
        match &captures[1] {
            b"width" => width = Some(points),
            _ => height = Some(points),
        }
    }
    Some((width?, height?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::Packer;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut packer = Packer::new();
        packer.dir("out").unwrap();
        for (name, content) in entries {
            packer.parents_of(&format!("out/{name}")).unwrap();
            packer.file(&format!("out/{name}"), content, 0o644).unwrap();
        }
        packer.finish().unwrap()
    }

    #[test]
    fn files_are_read_within_the_limits_and_the_rest_is_reported() {
        let tar = tar_of(&[
            ("a.txt", b"aaaa"),
            ("sub/b.csv", b"bb"),
            ("c.bin", b"cccccc"),
        ]);
        let mut omitted = Vec::new();
        let limits = ArtifactLimits {
            max_files: 10,
            max_bytes: 7,
        };
        let files = read_files(&tar, "out", "/sandbox/out", limits, &mut omitted).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.txt", "sub/b.csv"]);
        assert_eq!(omitted.len(), 1);
        assert_eq!(omitted[0].name, "/sandbox/out/c.bin");
        assert_eq!(omitted[0].size, Some(6));
        assert!(omitted[0].reason.contains("7 bytes"), "{:?}", omitted[0]);

        let artifacts = artifacts_from(files);
        assert_eq!(artifacts[1].media_type, "text/csv");
        assert_eq!(artifacts[1].size, 2);
        assert_eq!(artifacts[1].content, b"bb");

        let mut omitted = Vec::new();
        let limits = ArtifactLimits {
            max_files: 1,
            max_bytes: 100,
        };
        let files = read_files(&tar, "out", "/o", limits, &mut omitted).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(omitted.len(), 2);
        assert!(omitted.iter().all(|o| o.reason.contains("1 files")));
    }

    #[test]
    fn links_and_names_outside_the_folder_are_not_read() {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind) in [
            ("out/link", tar::EntryType::Symlink),
            ("out/../escape", tar::EntryType::Regular),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(0);
            header.set_mode(0o644);
            if kind == tar::EntryType::Symlink {
                header.set_link_name("/etc/shadow").unwrap();
            }
            // `set_path` refuses `..`; write the raw name as a hostile archive would.
            let raw = &mut header.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            builder.append(&header, &[][..]).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut omitted = Vec::new();
        let files = read_files(&tar, "out", "/o", ArtifactLimits::default(), &mut omitted).unwrap();
        assert!(files.is_empty());
        let reasons: Vec<_> = omitted.iter().map(|o| o.reason.as_str()).collect();
        assert_eq!(omitted.len(), 2, "{omitted:?}");
        assert!(reasons.iter().any(|r| r.starts_with("not a regular file")));
        assert!(reasons.iter().any(|r| r.starts_with("a name outside")));
    }

    #[test]
    fn plots_pair_images_with_descriptions_in_capture_order() {
        let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="288pt" height="216pt" viewBox="0 0 288 216">"#;
        let pdf = b"%PDF-1.4\n1 0 obj << /Type /Page /MediaBox [ 0 0 432 288 ] >>";
        let files = vec![
            CollectedFile {
                name: "10.svg".into(),
                content: svg.to_vec(),
            },
            CollectedFile {
                name: "10.json".into(),
                content: br#"{"format":"svg","width":1,"height":1,"dpi":50}"#.to_vec(),
            },
            CollectedFile {
                name: "2.pdf".into(),
                content: pdf.to_vec(),
            },
            CollectedFile {
                name: "2.json".into(),
                content: br#"{"format":"pdf","width":null,"height":null,"dpi":100}"#.to_vec(),
            },
            CollectedFile {
                name: "3.json".into(),
                content: br#"{"format":"html","width":700,"height":450,"dpi":null}"#.to_vec(),
            },
            CollectedFile {
                name: "3.html".into(),
                content: b"<html></html>".to_vec(),
            },
            CollectedFile {
                name: "4.json".into(),
                content: br#"{"format":"png","width":5,"height":5,"dpi":null}"#.to_vec(),
            },
            CollectedFile {
                name: "5.json".into(),
                content: br#"{"format":"png/../../x","width":5,"height":5,"dpi":null}"#.to_vec(),
            },
            CollectedFile {
                name: "5.png/../../x".into(),
                content: b"x".to_vec(),
            },
            CollectedFile {
                name: "errors.txt".into(),
                content: b"capturing savefig\nTraceback".to_vec(),
            },
        ];
        let mut omitted = Vec::new();
        let (plots, errors) = plots_from(files, &mut omitted);
        let summary: Vec<_> = plots
            .iter()
            .map(|p| (p.format.as_str(), p.width, p.height, p.dpi))
            .collect();
        assert_eq!(
            summary,
            [
                ("pdf", 600, 400, Some(100)),
                ("html", 700, 450, None),
                ("svg", 200, 150, Some(50)),
            ]
        );
        assert_eq!(errors, ["capturing savefig\nTraceback"]);
        assert_eq!(omitted.len(), 2, "{omitted:?}");
        assert!(omitted[0].name.starts_with("plot 4"));
        assert_eq!(omitted[1].name, "plot 5");
        assert!(omitted[1].reason.contains("not a plain name"));
    }

    #[test]
    fn plot_formats_parse() {
        assert_eq!("JPG".parse::<PlotFormat>().unwrap(), PlotFormat::Jpeg);
        assert_eq!("svg".parse::<PlotFormat>().unwrap().to_string(), "svg");
        assert!("gif".parse::<PlotFormat>().is_err());
    }
}
