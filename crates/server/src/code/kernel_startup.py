"""Run in every kernel of Warden's code interpreter at its start (and
restart), unseen by the client: what E2B's kernels add to IPython.

- `e2b/data`: a DataFrame's values ({column: [values]}, dates in ISO form).
- `e2b/chart`: what a matplotlib figure shows, as E2B's charts describe it
  (line, scatter, bar, pie, box-and-whisker, several axes as a superchart,
  anything else as unknown), for clients that draw their own.
- `PIL.Image.save` to a file also shows the image.

Formatters match classes by name and patches are made when the user's code
first imports the module, so nothing is imported before it is used. A
formatter that fails gives no field rather than a traceback in the output.
"""


def _w_startup():
    import importlib.abc
    import importlib.util
    import json
    import math
    import os
    import re
    import sys

    from IPython import get_ipython
    from IPython.core.formatters import BaseFormatter
    from traitlets import ObjectName, Unicode

    shell = get_ipython()

    # A field larger than this is left out (the PNG or HTML still shows the
    # thing): a result line must stay well within what clients take.
    max_field = 1 << 20

    def formatter(mime, module, name, fn):
        """Shows `fn(obj)` as `mime` for objects of class `module.name`.
        Matched by name in the call, not registered as a type printer:
        matplotlib's inline backend takes every formatter's printer for
        Figure away when it starts."""
        class Formatter(BaseFormatter):
            format_type = Unicode(mime)
            print_method = ObjectName("_repr_w_none_")
            _return_type = (dict,)

            def __call__(self, obj):
                cls = type(obj)
                if not self.enabled or (cls.__module__, cls.__name__) != (module, name):
                    return None
                try:
                    out = fn(obj)
                    return out if len(json.dumps(out)) <= max_field else None
                except Exception:
                    return None

        shell.display_formatter.formatters[mime] = Formatter(parent=shell.display_formatter)

    # DataFrames.
    def frame_data(df):
        split = json.loads(df.to_json(orient="split", date_format="iso", default_handler=str))
        cols = [str(c) for c in split["columns"]]
        return {c: [row[i] for row in split["data"]] for i, c in enumerate(cols)}

    formatter("e2b/data", "pandas.core.frame", "DataFrame", frame_data)

    # Charts.
    def unit_of(label):
        m = re.search(r"\(([^()]+)\)\s*$", label or "")
        return m.group(1) if m else None

    def scale_of(axis, name):
        from matplotlib import category, dates
        if isinstance(axis.get_units(), category.UnitData):
            return "categorical"
        if isinstance(axis.converter, dates.DateConverter) or isinstance(
                axis.get_major_formatter(), (dates.AutoDateFormatter, dates.DateFormatter,
                                             dates.ConciseDateFormatter)):
            return "datetime"
        return name

    def value_for(axis, scale):
        """Turns an axis's numbers into what they stand for."""
        from matplotlib import dates
        if scale == "datetime":
            return lambda v: dates.num2date(float(v)).isoformat()
        if scale == "categorical":
            names = {i: k for k, i in axis.get_units()._mapping.items()}
            return lambda v: names.get(int(round(float(v))), str(v))
        return lambda v: float(v) if math.isfinite(float(v)) else None

    def axes_2d(ax, kind):
        xs, ys = scale_of(ax.xaxis, ax.get_xscale()), scale_of(ax.yaxis, ax.get_yscale())
        x_label, y_label = ax.get_xlabel() or None, ax.get_ylabel() or None
        return {"type": kind, "title": ax.get_title() or None,
                "x_label": x_label, "y_label": y_label,
                "x_unit": unit_of(x_label), "y_unit": unit_of(y_label),
                "x_scale": xs, "y_scale": ys}, xs, ys

    def ticks(ax, chart, xs, ys):
        fx, fy = value_for(ax.xaxis, xs), value_for(ax.yaxis, ys)
        chart["x_ticks"] = [fx(t) for t in ax.get_xticks()]
        chart["x_tick_labels"] = [t.get_text() for t in ax.get_xticklabels()]
        chart["y_ticks"] = [fy(t) for t in ax.get_yticks()]
        chart["y_tick_labels"] = [t.get_text() for t in ax.get_yticklabels()]
        return fx, fy

    def series_label(artist):
        label = artist.get_label() or ""
        return None if label.startswith("_") else label

    def axis_chart(ax):
        from matplotlib.collections import PathCollection
        from matplotlib.container import BarContainer
        from matplotlib.patches import Wedge
        title = ax.get_title() or None
        boxes = getattr(ax, "_w_box_stats", None)
        if boxes:
            chart, _, _ = axes_2d(ax, "box_and_whisker")
            chart["elements"] = [{
                "label": str(s.get("label", i + 1)), "min": float(s["whislo"]),
                "first_quartile": float(s["q1"]), "median": float(s["med"]),
                "third_quartile": float(s["q3"]), "max": float(s["whishi"]),
                "outliers": [float(v) for v in s.get("fliers", [])],
            } for i, s in enumerate(boxes)]
            return chart
        wedges = [p for p in ax.patches if isinstance(p, Wedge)]
        if wedges:
            return {"type": "pie", "title": title, "elements": [{
                "label": w.get_label(), "angle": round(abs(w.theta2 - w.theta1), 2),
                "radius": float(w.r)} for w in wedges]}
        bars = [c for c in ax.containers if isinstance(c, BarContainer)]
        if bars:
            chart, xs, _ = axes_2d(ax, "bar")
            fx = value_for(ax.xaxis, xs)
            chart["elements"] = [{
                "label": str(fx(r.get_x() + r.get_width() / 2)), "group": c.get_label(),
                "value": float(r.get_height())} for c in bars for r in c.patches]
            return chart
        lines = [ln for ln in ax.get_lines() if len(ln.get_xdata(orig=False))]
        scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
        if lines or scatters:
            chart, xs, ys = axes_2d(ax, "line" if lines else "scatter")
            fx, fy = ticks(ax, chart, xs, ys)
            if lines:
                pairs = [(series_label(ln), zip(ln.get_xdata(orig=False),
                                                ln.get_ydata(orig=False))) for ln in lines]
            else:
                pairs = [(series_label(c), c.get_offsets()) for c in scatters]
            chart["elements"] = [{"label": label, "points": [[fx(x), fy(y)] for x, y in pts]}
                                 for label, pts in pairs]
            return chart
        return {"type": "unknown", "title": title, "elements": []}

    def figure_chart(fig):
        axes = [ax for ax in fig.get_axes() if ax.get_visible()]
        suptitle = getattr(fig, "_suptitle", None)
        suptitle = suptitle.get_text() if suptitle is not None else None
        if len(axes) == 1:
            chart = axis_chart(axes[0])
            chart["title"] = chart["title"] or suptitle or None
            return chart
        return {"type": "superchart" if axes else "unknown", "title": suptitle or None,
                "elements": [axis_chart(ax) for ax in axes]}

    formatter("e2b/chart", "matplotlib.figure", "Figure", figure_chart)

    # Patches made when a module is first imported.
    def patch_pil(module):
        save = module.Image.save

        def save_and_show(self, fp, *args, **kwargs):
            out = save(self, fp, *args, **kwargs)
            if isinstance(fp, (str, bytes, os.PathLike)):
                from IPython.display import display
                display(self)
            return out
        module.Image.save = save_and_show

    def patch_axes(module):
        bxp = module.Axes.bxp

        def keep_stats(self, bxpstats, *args, **kwargs):
            bxpstats = list(bxpstats)
            kept = getattr(self, "_w_box_stats", [])
            self._w_box_stats = kept + [dict(s) for s in bxpstats]
            return bxp(self, bxpstats, *args, **kwargs)
        module.Axes.bxp = keep_stats

    patches = {"PIL.Image": patch_pil, "matplotlib.axes": patch_axes}

    class AfterImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            patch = patches.pop(name, None)
            if patch is None:
                return None
            spec = importlib.util.find_spec(name)
            if spec is None or spec.loader is None:
                return spec
            loader = spec.loader
            run = loader.exec_module

            def exec_module(module):
                # Once, for this module only (a loader may be shared, as a
                # zip importer is), then the loader is as it was.
                loader.exec_module = run
                run(module)
                if module.__name__ == name:
                    try:
                        patch(module)
                    except Exception:
                        pass  # an unexpected version: no patch, the import stands
            loader.exec_module = exec_module
            return spec

    for name in list(patches):
        if name in sys.modules:
            try:
                patches.pop(name)(sys.modules[name])
            except Exception:
                pass
    sys.meta_path.insert(0, AfterImport())


_w_startup()
del _w_startup
