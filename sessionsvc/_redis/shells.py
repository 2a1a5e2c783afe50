"""Shell methods written once: ``operation`` turns a core's op into a blocking or an awaited method.

A shell (``SessionService``, ``Publisher``, …) holds a pure ``core`` and a client. Declared once on
their shared base, ``login = operation(SessionCore.login, doc)`` is, on a ``Blocking`` shell, a
method that runs ``core.login(...)`` with ``run`` and returns its result, and on an ``Awaiting``
shell a coroutine method that runs it with ``arun``. Each method is a real function per class
(``help`` shows its signature, with the op's result as the return type, and its docstring);
mypy sees ``Callable[P, T]`` on a ``Blocking`` shell and ``Callable[P, Coroutine[…, T]]`` on an
``Awaiting`` one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from types import MethodType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, get_args, overload

from sessionsvc._redis.run import Op, arun, run

__all__ = ["Awaiting", "Blocking", "operation"]

C = TypeVar("C")
P = ParamSpec("P")
T = TypeVar("T")


class operation(Generic[C, P, T]):
    """The shell method of the op ``op(core, *args, **kwargs)``; ``doc`` as its docstring."""

    def __init__(self, op: Callable[Concatenate[C, P], Op[T]], doc: str | None = None) -> None:
        self._op = op
        self._doc = doc if doc is not None else op.__doc__
        self._name = op.__name__
        self._methods: dict[type, Callable[..., Any]] = {}

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Callable[..., Any]: ...
    @overload
    def __get__(self, obj: Awaiting, owner: type) -> Callable[P, Coroutine[Any, Any, T]]: ...
    @overload
    def __get__(self, obj: Blocking, owner: type) -> Callable[P, T]: ...
    def __get__(self, obj: Any, owner: type) -> Any:
        method = self._methods.get(owner) or self._method(owner)
        return method if obj is None else MethodType(method, obj)

    def _method(self, owner: type) -> Callable[..., Any]:
        op = self._op
        if issubclass(owner, Awaiting):

            async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
                return await arun(self._client, op(self.core, *args, **kwargs))

        else:

            def method(self: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
                return run(self._client, op(self.core, *args, **kwargs))

        method.__module__ = owner.__module__
        method.__name__ = self._name
        method.__qualname__ = f"{owner.__qualname__}.{self._name}"
        method.__doc__ = self._doc
        signature = inspect.signature(op, eval_str=True)
        first, *rest = signature.parameters.values()  # the core: the shell's ``self`` here
        result = get_args(signature.return_annotation)  # Op[T]: Generator[effect, reply, T]
        method.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[
                first.replace(
                    name="self",
                    kind=inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    annotation=inspect.Parameter.empty,
                ),
                *rest,
            ],
            return_annotation=result[-1] if result else signature.return_annotation,
        )
        self._methods[owner] = method
        return method


class _Shell:
    core: Any
    _client: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # each operation the class inherits becomes a plain function of the class: a call then
        # costs what any method call costs (no descriptor, no bound-method object per call)
        super().__init_subclass__(**kwargs)
        for klass in cls.__mro__[1:]:
            for name, value in vars(klass).items():
                if isinstance(value, operation) and name not in vars(cls):
                    setattr(cls, name, value._method(cls))


class Blocking(_Shell):
    """A sync shell: its operations run on ``_client`` (redis-py) and block."""


class Awaiting(_Shell):
    """An asyncio shell: its operations run on ``_client`` (``redis.asyncio``), awaited."""
