"""Editing the open customer's name, facts and e-mail address (the `edit_profile` action, e).

A picker lists the name, each fact and "add a fact"; a prompt takes the new
text. An empty value removes a fact. Every change is an event that u undoes,
the same store calls as `omnidesk fact` and `omnidesk rename`."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text

from console.screens.pickers import PickerScreen, PromptScreen
from console.widgets.safe_text import one_line
from store.facts import fact_name, key_problem

if TYPE_CHECKING:
    from console.desk import DeskScreen


def _check_pair(text: str) -> str | None:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        return "type KEY=VALUE, like order_number=5521"
    return key_problem(fact_name(key))  # "gift card" is gift_card, as the CLI takes it


def _check_address(text: str) -> str | None:
    local, at, domain = text.strip().rpartition("@")
    return None if at and local and "." in domain and " " not in text.strip() else "type an address, like ann@example.com"


class ProfileEdit:
    def __init__(self, desk: "DeskScreen"):
        self.desk = desk
        self.app = desk.app

    def edit(self) -> None:
        customer = self.desk.need_customer()
        if customer is None:
            return
        muted = Style(dim=True)
        name = Text("name  ", style=muted, end="")
        name.append(one_line(customer.name, 50), "bold")
        items: list = [(name, ("name", None))]
        for key, value in customer.facts.items():
            label = Text(one_line(key, 30) + "  ", style=muted, end="")
            label.append(one_line(value, 60))
            items.append((label, ("fact", key)))
        items.append((Text("+ add a fact", style="bold"), ("add", None)))
        items.append((Text("+ add an e-mail address", style="bold"), ("address", None)))
        self.app.push_screen(PickerScreen(f"Edit #{customer.id} {one_line(customer.name, 40)}", items,
                                          help="enter edits; an empty value removes a fact; u undoes"),
                             lambda choice: choice and self._chosen(customer, *choice))

    def _chosen(self, customer, kind: str, key: str | None) -> None:
        cid, agent = customer.id, self.app.agent
        if kind == "name":
            self.app.push_screen(PromptScreen("Name", value=customer.name, help="how the console and templates name them"),
                                 lambda text: text and text.strip() and self.desk.write(
                                     lambda s: s.rename(cid, text, agent), done="renamed · u undoes"))
        elif kind == "fact":
            def set_value(text):
                if text is None:
                    return
                value = text.strip() or None
                self.desk.write(lambda s: s.set_fact(cid, key, value, agent),
                                done=f"{'changed' if value else 'removed'} {one_line(key, 30)} · u undoes")
            self.app.push_screen(PromptScreen(f"{one_line(key, 40)} =", value=customer.facts.get(key, ""),
                                              help="empty removes this fact"), set_value)
        elif kind == "address":  # replies go to it (mail that came without a usable sender)
            self.app.push_screen(PromptScreen("E-mail address", placeholder="name@example.com",
                                              help="replies to them go to this address; u undoes",
                                              check=_check_address),
                                 lambda text: text and text.strip() and self.desk.write(
                                     lambda s: s.add_address(cid, text.strip(), agent),
                                     done=f"replies go to {one_line(text.strip(), 40)} now · u undoes"))
        else:
            def add(text):
                if not text:
                    return
                k, _, v = text.partition("=")
                k = fact_name(k)
                self.desk.write(lambda s: s.set_fact(cid, k, v, agent), done=f"set {one_line(k, 30)} · u undoes")
            self.app.push_screen(PromptScreen("Add a fact", placeholder="order_number=5521",
                                              help="KEY=VALUE; templates use it as {{ key }}", check=_check_pair), add)
