"""thorgym.kqa: embodied knowledge QA, an OK-VQA-format split generated from simulator scenes.

- :mod:`thorgym.kqa.format`: the OK-VQA file formats (layout, loaders, writers); used by the
  generator here and by the scorer :mod:`thorgym.eval.okvqa`.
- :mod:`thorgym.kqa.knowledge`: the knowledge base and the ten-answer vote tables.
- :mod:`thorgym.kqa.questions`, :mod:`thorgym.kqa.views`: what is asked about a view, and which
  views are rendered.
- :mod:`thorgym.kqa.generate`: :func:`~thorgym.kqa.generate.generate_kqa` writes a split.
- :mod:`thorgym.kqa.baselines`: baselines fitted on the train split, scored with the OK-VQA metric.

Nothing is imported here, so that :mod:`thorgym.eval.okvqa` can read the format module without
loading the generator (which needs the simulator) or the baselines (which need the scorer).
"""
