//! Plots and output-folder artifacts, on every backend (see `common` for how backends are
//! chosen). Each returned image is decoded far enough to check its format and pixel size.

mod common;

use llm_sandbox::{ArtifactLimits, Error, PlotFormat, PlotOutput, SandboxSession};

fn python() -> llm_sandbox::SandboxSessionBuilder {
    SandboxSession::builder()
        .lang("python")
        .memory(Some(1 << 30))
        .default_timeout(std::time::Duration::from_secs(120))
}

/// Checks the file signature of `plot` against its format and returns its real pixel size
/// (read from the image for raster formats).
fn decoded_size(plot: &PlotOutput) -> (u32, u32) {
    let content = plot.content();
    let starts = |magic: &[u8]| content.starts_with(magic);
    match plot.format.as_str() {
        "png" => assert!(starts(b"\x89PNG\r\n\x1a\n"), "not a PNG"),
        "jpeg" => assert!(starts(b"\xff\xd8\xff"), "not a JPEG"),
        "pdf" => assert!(starts(b"%PDF-"), "not a PDF"),
        "svg" => assert!(
            String::from_utf8_lossy(&content).contains("<svg"),
            "not an SVG"
        ),
        "html" => assert!(
            String::from_utf8_lossy(&content).contains("<html"),
            "not HTML"
        ),
        other => panic!("unexpected format {other}"),
    }
    match plot.format.as_str() {
        "png" | "jpeg" => {
            let size = imagesize::blob_size(&content).expect("a decodable image");
            (size.width as u32, size.height as u32)
        }
        _ => (plot.width, plot.height),
    }
}

const MATPLOTLIB: &str = r#"
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

plt.plot([1, 2, 3], [3, 1, 2])
plt.show()                                   # 1: png 640x480 at 100 dpi

fig, ax = plt.subplots(figsize=(4, 3), dpi=50)
ax.bar(["a", "b"], [1, 2])
fig.savefig("chart.svg")                     # 2: svg 200x150
fig.savefig("chart.jpg", dpi=80)             # 3: jpeg 320x240
plt.close(fig)

fig = plt.figure(figsize=(5, 2))
fig.savefig("wide.pdf")                      # 4: pdf 500x200 at 100 dpi
fig.show()                                   # 5: png 500x200

plt.figure()
sns.histplot([1, 2, 2, 3, 3, 3])             # 6: left open: png at exit
pd.DataFrame({"x": [1, 2, 3]}).plot()        # 7: a pandas plot, also open at exit
print("done")
"#;

/// matplotlib (show, Figure.show, savefig in four formats), seaborn and pandas plots come back
/// in order, with their real sizes; nothing extra appears on stdout or stderr.
#[tokio::test]
async fn matplotlib_seaborn_and_pandas_plots_come_back() {
    for backend in common::backends() {
        let Some(session) = common::open(backend, python().enable_plotting(true)).await else {
            continue;
        };
        let result = session.run(MATPLOTLIB).await.unwrap();
        assert_eq!(result.exit_code, 0, "{backend}: {}", result.stderr);
        assert_eq!(result.stdout, "done\n", "{backend}");
        assert_eq!(result.stderr, "", "{backend}");
        let summary: Vec<_> = result
            .plots
            .iter()
            .map(|p| (p.format.as_str(), decoded_size(p), p.dpi))
            .collect();
        assert_eq!(
            summary[..5],
            [
                ("png", (640, 480), Some(100)),
                ("svg", (200, 150), Some(50)),
                ("jpeg", (320, 240), Some(80)),
                ("pdf", (500, 200), Some(100)),
                ("png", (500, 200), Some(100)),
            ],
            "{backend}"
        );
        assert_eq!(summary.len(), 7, "{backend}: {summary:?}");
        for plot in &result.plots[5..] {
            assert_eq!(
                (plot.format.as_str(), decoded_size(plot)),
                ("png", (640, 480)),
                "{backend}"
            );
        }
        assert!(result.omitted.is_empty(), "{backend}: {:?}", result.omitted);
        session.close().await.unwrap();
    }
}

/// plotly shows as HTML (no static renderer is installed), PIL images saved to files come
/// back, and `plot_format` picks the format of shown figures.
#[tokio::test]
async fn plotly_pil_and_the_shown_format() {
    let code = r#"
import plotly.express as px
from PIL import Image
import matplotlib.pyplot as plt

px.line(x=[1, 2, 3], y=[2, 1, 3], width=300, height=200).show()
Image.new("RGB", (33, 44), "red").save("red.png")
Image.new("L", (21, 12)).save("grey.jpeg")
plt.plot([1, 2])
plt.show()
"#;
    for backend in common::backends() {
        let builder = python().enable_plotting(true).plot_format(PlotFormat::Svg);
        let Some(session) = common::open(backend, builder).await else {
            continue;
        };
        let result = session.run(code).await.unwrap();
        assert_eq!(result.exit_code, 0, "{backend}: {}", result.stderr);
        assert_eq!(result.stderr, "", "{backend}");
        let summary: Vec<_> = result
            .plots
            .iter()
            .map(|p| (p.format.as_str(), decoded_size(p)))
            .collect();
        assert_eq!(
            summary,
            [
                ("html", (300, 200)),
                ("png", (33, 44)),
                ("jpeg", (21, 12)),
                ("svg", (640, 480)),
            ],
            "{backend}"
        );
        assert!(String::from_utf8_lossy(&result.plots[0].content()).contains("plotly"));
        session.close().await.unwrap();
    }
}

/// The program is unchanged by capture: the same environment, path and stdout as without
/// it, and a traceback whose line numbers and frames are the user's own.
#[tokio::test]
async fn capture_does_not_change_the_program() {
    let quiet = r#"import os, sys
print(sorted((k, v) for k, v in os.environ.items() if k != "HOSTNAME"))  # a container's id
print(sys.path[1:])
import sitecustomize
print(getattr(sitecustomize, "__file__", None))
"#;
    let run_dirs = regex::Regex::new(r"run-[0-9]+").unwrap();
    let failing =
        "import matplotlib.pyplot as plt\nplt.plot([1, 2])\n\nraise ValueError('line four')\n";
    for backend in common::backends() {
        let mut outputs = Vec::new();
        for plotting in [false, true] {
            let Some(session) = common::open(backend, python().enable_plotting(plotting)).await
            else {
                break;
            };
            let quiet = session.run(quiet).await.unwrap();
            assert_eq!(quiet.exit_code, 0, "{backend}: {}", quiet.stderr);
            assert!(quiet.plots.is_empty());
            let failed = session.run(failing).await.unwrap();
            assert_eq!(failed.exit_code, 1, "{backend}");
            assert!(
                failed.stderr.contains("line 4, in <module>")
                    && failed.stderr.ends_with("ValueError: line four\n"),
                "{backend}: {}",
                failed.stderr
            );
            assert_eq!(
                failed.stderr.matches("File ").count(),
                1,
                "{backend}: only the user's frame: {}",
                failed.stderr
            );
            // The open figure still comes back when the program fails.
            assert_eq!(failed.plots.len(), usize::from(plotting), "{backend}");
            outputs.push((
                quiet.stdout_bytes,
                run_dirs.replace_all(&failed.stderr, "run-N").into_owned(),
            ));
            session.close().await.unwrap();
        }
        if outputs.len() == 2 {
            assert_eq!(
                String::from_utf8_lossy(&outputs[0].0),
                String::from_utf8_lossy(&outputs[1].0),
                "{backend}: stdout differs with plotting"
            );
            assert_eq!(outputs[0].1, outputs[1].1, "{backend}: stderr differs");
        }
    }
}

/// Plots belong to their run; `keep_plots` accumulates them until `clear_plots`.
#[tokio::test]
async fn plots_belong_to_their_run_unless_kept() {
    let one_plot = "import matplotlib.pyplot as plt\nplt.plot([1])\nplt.show()\n";
    for backend in common::backends() {
        let Some(session) = common::open(backend, python().enable_plotting(true)).await else {
            continue;
        };
        assert_eq!(session.run(one_plot).await.unwrap().plots.len(), 1);
        assert_eq!(session.run(one_plot).await.unwrap().plots.len(), 1);
        assert!(session.run("print(1)").await.unwrap().plots.is_empty());
        session.close().await.unwrap();

        let builder = python().enable_plotting(true).keep_plots(true);
        let Some(session) = common::open(backend, builder).await else {
            continue;
        };
        session.run(one_plot).await.unwrap();
        assert_eq!(session.run(one_plot).await.unwrap().plots.len(), 2);
        assert_eq!(session.plots().len(), 2);
        session.clear_plots();
        assert!(session.plots().is_empty());
        assert_eq!(session.run(one_plot).await.unwrap().plots.len(), 1);
        session.close().await.unwrap();
    }
}

/// Files written under the output folder come back (name, media type, size, content), links
/// do not, and the folder is emptied for the next run.
#[tokio::test]
async fn output_files_come_back_as_artifacts() {
    let code = r#"
import os
os.makedirs("output/tables", exist_ok=True)
open("output/tables/scores.csv", "w").write("a,b\n1,2\n")
open("output/notes.txt", "wb").write(b"\x00\xffbinary")
os.symlink("/etc/passwd", "output/passwd")
open("elsewhere.txt", "w").write("not an artifact")
"#;
    for backend in common::backends() {
        let Some(session) = common::open(backend, python().collect_artifacts(true)).await else {
            continue;
        };
        let result = session.run(code).await.unwrap();
        assert_eq!(result.exit_code, 0, "{backend}: {}", result.stderr);
        let mut artifacts: Vec<_> = result
            .artifacts
            .iter()
            .map(|a| {
                (
                    a.name.as_str(),
                    a.media_type.as_str(),
                    a.size,
                    a.content.clone(),
                )
            })
            .collect();
        artifacts.sort();
        assert_eq!(
            artifacts,
            [
                ("notes.txt", "text/plain", 8, b"\x00\xffbinary".to_vec()),
                ("tables/scores.csv", "text/csv", 8, b"a,b\n1,2\n".to_vec()),
            ],
            "{backend}"
        );
        assert_eq!(result.omitted.len(), 1, "{backend}: {:?}", result.omitted);
        assert!(result.omitted[0].name.ends_with("output/passwd"));
        assert!(result.omitted[0].reason.contains("not a regular file"));

        // Returned files were moved out (their folders stay); the link was left where it is.
        let next = session
            .run("import os\nprint(sorted(os.listdir('output')))")
            .await
            .unwrap();
        assert_eq!(
            next.stdout, "['passwd', 'tables']\n",
            "{backend}: {}",
            next.stderr
        );
        assert!(next.artifacts.is_empty());
        session.close().await.unwrap();
    }
}

/// Limits on count and bytes hold, with a marker for what was left out, both when the folder
/// fits in one archive and when it has to be listed and picked file by file.
#[tokio::test]
async fn artifacts_are_bounded_with_a_marker() {
    let few_big = r#"
open("output/a.txt", "w").write("a" * 100)
open("output/b.txt", "w").write("b" * 100)
open("output/c.bin", "wb").write(b"c" * 5000)
"#;
    let many_small = r#"
for i in range(300):
    open("output/f%03d.txt" % i, "w").write(str(i))
"#;
    for backend in common::backends() {
        let limits = ArtifactLimits {
            max_files: 5,
            max_bytes: 1000,
        };
        let builder = python().collect_artifacts(true).artifact_limits(limits);
        let Some(session) = common::open(backend, builder).await else {
            continue;
        };
        let result = session.run(few_big).await.unwrap();
        let mut names: Vec<_> = result.artifacts.iter().map(|a| a.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["a.txt", "b.txt"], "{backend}: {:?}", result.omitted);
        assert_eq!(result.omitted.len(), 1, "{backend}: {:?}", result.omitted);
        assert!(result.omitted[0].name.ends_with("output/c.bin"));
        assert_eq!(result.omitted[0].size, Some(5000));
        assert!(result.omitted[0].reason.contains("1000 bytes"));

        // The big file was left in the sandbox; this run removes it.
        let result = session.run("import os\nos.remove('output/c.bin')").await;
        assert!(result.unwrap().artifacts.is_empty());

        let result = session.run(many_small).await.unwrap();
        let names: Vec<_> = result.artifacts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            ["f000.txt", "f001.txt", "f002.txt", "f003.txt", "f004.txt"],
            "{backend}"
        );
        // Ten are named, then a count.
        assert_eq!(result.omitted.len(), 11, "{backend}: {:?}", result.omitted);
        assert!(result.omitted[0].name.ends_with("output/f005.txt"));
        assert!(result.omitted.iter().all(|o| o.reason.contains("5 files")));
        assert_eq!(result.omitted[10].name, "285 more files");
        session.close().await.unwrap();
    }
}

/// Plotting for a language that cannot capture plots is refused with a clear error.
#[test]
fn plotting_is_refused_for_languages_without_capture() {
    let error = SandboxSession::builder()
        .lang("javascript")
        .enable_plotting(true)
        .build()
        .unwrap_err();
    assert!(
        matches!(error, Error::PlottingNotSupported { ref language } if language == "javascript"),
        "{error}"
    );
    assert!(error.to_string().contains("turn plotting off"));
    let error = SandboxSession::builder()
        .output_dir("../escape")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("relative path"), "{error}");
}
