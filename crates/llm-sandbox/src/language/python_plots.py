# llm-sandbox plot capture: the `sitecustomize` Python loads at start-up when plotting is enabled.
#
# The sandbox puts this file's directory first on PYTHONPATH for one run. It leaves no trace in
# the user's program: it takes its directory off sys.path and PYTHONPATH, hands `sitecustomize`
# back to the system's own (if any), writes nothing to stdout or stderr, and imports no plotting
# library itself. It patches matplotlib, PIL and plotly only when the program imports them.
#
# Each capture is written to $LLM_SANDBOX_PLOTS_DIR as <n>.<format> with <n>.json beside it
# (format, width, height, dpi where known); the sandbox collects the directory after the run.
# Failures are recorded in errors.txt there, never raised into the program.

import os
import sys


def _install():
    plots_dir = os.environ.pop("LLM_SANDBOX_PLOTS_DIR", None)
    show_format = os.environ.pop("LLM_SANDBOX_PLOT_FORMAT", None) or "png"
    here = os.path.dirname(os.path.abspath(__file__))
    rest = os.environ.pop("LLM_SANDBOX_PYTHONPATH", None)
    if rest:
        os.environ["PYTHONPATH"] = rest
    else:
        os.environ.pop("PYTHONPATH", None)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    if plots_dir:
        _capture_plots(plots_dir, show_format)
    _chain_system_sitecustomize()


def _capture_plots(plots_dir, show_format):
    """Patches the plotting libraries when they are imported, and captures open figures at exit."""

    import atexit
    import threading

    state = {"count": 0, "captured": set()}
    busy = threading.local()  # inside a capture or a savefig: inner saves are not plots

    def record_error(what):
        try:
            import traceback

            with open(os.path.join(plots_dir, "errors.txt"), "a") as f:
                f.write("%s\n%s\n" % (what, traceback.format_exc()))
        except Exception:
            pass

    def next_path(fmt):
        state["count"] += 1
        return os.path.join(plots_dir, "%d.%s" % (state["count"], fmt))

    def write_meta(path, fmt, width=None, height=None, dpi=None):
        import json

        meta = {"format": fmt, "width": width, "height": height, "dpi": dpi}
        with open(os.path.splitext(path)[0] + ".json", "w") as f:
            json.dump(meta, f)

    def normal_format(fmt):
        fmt = (fmt or "").lower().lstrip(".")
        return {"jpg": "jpeg", "htm": "html", "tif": "tiff"}.get(fmt, fmt)

    def format_of(fname, default):
        if isinstance(fname, (str, bytes, os.PathLike)):
            ext = os.path.splitext(os.fsdecode(fname))[1]
            if ext:
                return normal_format(ext)
        return normal_format(default)

    def copy_file(source, fmt, **meta):
        import shutil

        path = next_path(fmt)
        shutil.copyfile(source, path)
        write_meta(path, fmt, **meta)

    class Guard:
        def __enter__(self):
            self.outer = getattr(busy, "on", False)
            busy.on = True

        def __exit__(self, *exc):
            busy.on = self.outer

    # ---- matplotlib ------------------------------------------------------------------------

    def figure_meta(fig, dpi=None):
        dpi = dpi if isinstance(dpi, (int, float)) else fig.dpi
        width, height = fig.get_size_inches()
        return {"width": round(width * dpi), "height": round(height * dpi), "dpi": round(dpi)}

    def capture_figure(fig, original_savefig):
        try:
            with Guard():
                path = next_path(show_format)
                original_savefig(fig, path, format=show_format)
                write_meta(path, show_format, **figure_meta(fig))
            state["captured"].add(id(fig))
        except Exception:
            record_error("capturing a matplotlib figure")

    def patch_figure(module):
        Figure = module.Figure
        original_savefig = Figure.savefig

        def savefig(self, fname, *args, **kwargs):
            if getattr(busy, "on", False):
                return original_savefig(self, fname, *args, **kwargs)
            with Guard():
                result = original_savefig(self, fname, *args, **kwargs)
            try:
                with Guard():
                    fmt = normal_format(kwargs.get("format")) or format_of(
                        fname, sys.modules["matplotlib"].rcParams["savefig.format"]
                    )
                    meta = figure_meta(self, kwargs.get("dpi", sys.modules["matplotlib"].rcParams["savefig.dpi"]))
                    if isinstance(fname, (str, bytes, os.PathLike)) and os.path.isfile(fname):
                        copy_file(fname, fmt, **meta)
                    else:
                        path = next_path(fmt)
                        original_savefig(self, path, *args, **dict(kwargs, format=fmt))
                        write_meta(path, fmt, **meta)
                state["captured"].add(id(self))
            except Exception:
                record_error("capturing savefig")
            return result

        def show(self, *args, **kwargs):
            capture_figure(self, original_savefig)

        Figure.savefig = savefig
        Figure.show = show
        state["original_savefig"] = original_savefig

    def patch_pyplot(module):
        original_show = module.show

        def show(*args, **kwargs):
            original_savefig = state.get("original_savefig")
            if original_savefig is None:
                return original_show(*args, **kwargs)
            for number in module.get_fignums():
                capture_figure(module.figure(number), original_savefig)
            module.close("all")

        module.show = show
        # After matplotlib's own exit handler (which closes every figure) so that this one runs
        # first; handlers the program registers later still run before it.
        atexit.register(capture_open_figures)

    def capture_open_figures():
        pyplot = sys.modules.get("matplotlib.pyplot")
        original_savefig = state.get("original_savefig")
        if pyplot is None or original_savefig is None:
            return
        try:
            for number in pyplot.get_fignums():
                fig = pyplot.figure(number)
                if id(fig) not in state["captured"]:
                    capture_figure(fig, original_savefig)
        except Exception:
            record_error("capturing open figures at exit")

    # ---- PIL -------------------------------------------------------------------------------

    def patch_pil(module):
        Image = module.Image
        original_save = Image.save

        def image_meta(image):
            dpi = image.info.get("dpi")
            dpi = round(dpi[0]) if isinstance(dpi, tuple) and dpi and dpi[0] else None
            return {"width": image.width, "height": image.height, "dpi": dpi}

        def save(self, fp, format=None, **params):
            result = original_save(self, fp, format, **params)
            if getattr(busy, "on", False):
                return result
            try:
                with Guard():
                    fmt = normal_format(format) or format_of(fp, "png")
                    if isinstance(fp, (str, bytes, os.PathLike)) and os.path.isfile(fp):
                        copy_file(fp, fmt, **image_meta(self))
                    else:
                        path = next_path(fmt)
                        original_save(self, path, fmt.upper(), **params)
                        write_meta(path, fmt, **image_meta(self))
            except Exception:
                record_error("capturing a PIL image save")
            return result

        def show(self, *args, **kwargs):
            try:
                with Guard():
                    path = next_path("png")
                    original_save(self, path, "PNG")
                    write_meta(path, "png", **image_meta(self))
            except Exception:
                record_error("capturing a PIL image show")

        Image.save = save
        Image.show = show

    # ---- plotly ----------------------------------------------------------------------------

    def patch_plotly(module):
        BaseFigure = module.BaseFigure
        original_write_html = BaseFigure.write_html
        original_write_image = BaseFigure.write_image

        def plotly_meta(fig):
            layout = fig.layout
            return {"width": layout.width or 700, "height": layout.height or 450, "dpi": None}

        def show(self, *args, **kwargs):
            try:
                import importlib.util

                with Guard():
                    if importlib.util.find_spec("kaleido") is not None:  # a static renderer
                        fmt = show_format if show_format in ("png", "jpeg", "svg", "pdf") else "png"
                        path = next_path(fmt)
                        with open(path, "wb") as f:
                            f.write(self.to_image(format=fmt))
                    else:
                        fmt = "html"
                        path = next_path(fmt)
                        original_write_html(self, path, include_plotlyjs="cdn", full_html=True)
                    write_meta(path, fmt, **plotly_meta(self))
            except Exception:
                record_error("capturing a plotly figure")

        def write_html(self, file, *args, **kwargs):
            result = original_write_html(self, file, *args, **kwargs)
            try:
                if isinstance(file, (str, bytes, os.PathLike)) and os.path.isfile(file):
                    copy_file(file, "html", **plotly_meta(self))
            except Exception:
                record_error("capturing plotly write_html")
            return result

        def write_image(self, file, *args, **kwargs):
            result = original_write_image(self, file, *args, **kwargs)
            try:
                if isinstance(file, (str, bytes, os.PathLike)) and os.path.isfile(file):
                    fmt = normal_format(kwargs.get("format")) or format_of(file, "png")
                    copy_file(file, fmt, **plotly_meta(self))
            except Exception:
                record_error("capturing plotly write_image")
            return result

        BaseFigure.show = show
        BaseFigure.write_html = write_html
        BaseFigure.write_image = write_image

    # ---- patching on import ----------------------------------------------------------------

    patches = {
        "matplotlib.figure": patch_figure,
        "matplotlib.pyplot": patch_pyplot,
        "PIL.Image": patch_pil,
        "plotly.basedatatypes": patch_plotly,
    }

    class PatchOnImport:
        """A meta path finder that patches a module right after the real loader runs it."""

        def __init__(self):
            self.searching = set()

        def find_spec(self, name, path=None, target=None):
            patch = patches.get(name)
            if patch is None or name in self.searching:
                return None
            self.searching.add(name)
            try:
                import importlib.util

                spec = importlib.util.find_spec(name)
            finally:
                self.searching.discard(name)
            loader = spec.loader if spec is not None else None
            if loader is None or not hasattr(loader, "exec_module"):
                return spec
            original_exec = loader.exec_module

            def exec_module(module):
                original_exec(module)
                try:
                    patch(module)
                except Exception:
                    record_error("patching " + name)

            loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, PatchOnImport())


def _chain_system_sitecustomize():
    """Runs the `sitecustomize` this file shadows, so that the interpreter behaves as without it.

    Python keeps whatever `sys.modules["sitecustomize"]` holds once this file has run: the
    system's module when there is one, else this one.
    """
    ours = sys.modules.pop("sitecustomize", None)
    try:
        import sitecustomize  # noqa: F401  (the system's, now that our directory is off the path)
    except ModuleNotFoundError as error:
        if error.name != "sitecustomize":
            raise
        sys.modules["sitecustomize"] = ours


_install()
