"""The project's own Python stagers on torch tensors, so that the torch route is exercised wherever
torch imports: ``correct.CorrectStager`` passes the suite; each module in ``broken`` breaks
exactly one property the suite checks, and ``conformance/torch/examples/expect/<name>.expect.json``
says which cases catch it.

    stagekit-conform --impl torch:stagekit_torch_examples.correct:CorrectStager
"""
