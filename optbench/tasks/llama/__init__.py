"""The LLaMA language-model task: the GaLore LLaMA/C4 benchmark and small stand-ins for it.

``model.py`` the decoder; ``task.py`` the :class:`~optbench.tasks.base.Task`; ``data.py`` token
batches, the step stream and the ``data:`` config; ``synthetic.py`` a Markov language with a known
optimum; for text: ``documents.py`` opens files or the hub dataset with HF ``datasets``,
``shuffle.py`` orders them (resumably), ``tokenizer.py`` tokenizes, ``text.py`` cuts sequences,
and ``hub.py`` fails fast when the Hugging Face hub cannot be reached.
"""
