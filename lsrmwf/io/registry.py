"""Registries by name, as lm-evaluation-harness registers its tasks: ``register = registrar(TABLE, "kind")``
gives the class decorator ``@register("name")``, which names the class and adds it to ``TABLE``."""

from typing import Callable, Dict


def registrar(table: Dict[str, type], kind: str) -> Callable[[str], Callable[[type], type]]:
    def register(name: str) -> Callable[[type], type]:
        def add(cls: type) -> type:
            if name in table:
                raise ValueError(f"{kind} {name!r} is registered twice ({table[name].__name__}, {cls.__name__})")
            cls.name = name
            table[name] = cls
            return cls

        return add

    return register
