"""digitdet: find every digit in a house-number photo and read the whole number."""

import sys

__version__ = "0.1.0"


def _import_torchvision_ops_without_dynamo() -> None:
    """Keep `import torchvision` from importing torch._dynamo, which reading never uses.

    torchvision.ops.roi_align does `from torch._dynamo.utils import is_compile_supported` at import time,
    and importing torch._dynamo costs about 1.1 s and 150 MB (sympy, the compiler stack) of a 3-s first
    answer and a 1-GB reader (measured 2026-12-03, AMD EPYC). While roi_align executes, a stand-in module
    provides that name; it imports the real one the first time it is called (torchvision calls it only
    without its compiled ops, or deterministic on a GPU) and for any other name asked of it, so every
    caller still gets torch's own function. Nothing changes when torch._dynamo is already imported.
    """
    import importlib.abc
    import importlib.machinery
    import types

    name = "torch._dynamo.utils"

    def is_compile_supported(device_type):
        from torch._dynamo.utils import is_compile_supported as real

        return real(device_type)

    def real_attribute(attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if isinstance(sys.modules.get(name), types.ModuleType) and getattr(sys.modules[name], "_stand_in", False):
            del sys.modules[name]
        return getattr(importlib.import_module(name), attr)

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname != "torchvision.ops.roi_align":
                return None
            sys.meta_path.remove(self)  # once
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is None or spec.loader is None or "torch._dynamo" in sys.modules:
                return spec
            run = spec.loader.exec_module

            def exec_module(module):
                stand_in = types.ModuleType(name)
                stand_in._stand_in = True
                stand_in.is_compile_supported = is_compile_supported
                stand_in.__getattr__ = real_attribute
                sys.modules.setdefault(name, stand_in)
                try:
                    run(module)
                finally:
                    if sys.modules.get(name) is stand_in:
                        del sys.modules[name]

            spec.loader.exec_module = exec_module
            return spec

    if "torchvision.ops.roi_align" not in sys.modules:
        sys.meta_path.insert(0, Finder())


_import_torchvision_ops_without_dynamo()
