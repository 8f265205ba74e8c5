import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { FilterBar } from "../components/FilterBar";
import { composeFilter, quickFilters, userPosition } from "../lib/filter";

afterEach(cleanup);

describe("FilterBar", () => {
  it("submits the typed filter on Enter", () => {
    const onSubmit = vi.fn();
    render(<FilterBar value="" onSubmit={onSubmit} />);
    const input = screen.getByLabelText("filter");
    fireEvent.change(input, { target: { value: "status = 'ERROR'" } });
    fireEvent.submit(input.closest("form")!);
    expect(onSubmit).toHaveBeenCalledWith("status = 'ERROR'");
  });

  it("shows the server's message and a caret under the offending position", () => {
    render(
      <FilterBar
        value="status = "
        onSubmit={() => {}}
        error={{ message: "expected a value after '=' at position 8\n  status =\n  ^", position: 8 }}
      />,
    );
    expect(screen.getByRole("alert").textContent).toContain("expected a value after '='");
    const caret = screen.getByTestId("filter-caret").textContent!;
    expect(caret.split("\n")[1]).toBe(" ".repeat(8) + "^");
    expect(screen.getByLabelText("filter").getAttribute("aria-invalid")).toBe("true");
  });

  it("toggles quick filters", () => {
    const onToggle = vi.fn();
    const quick = quickFilters(5000, ["helpful"]);
    render(<FilterBar value="" onSubmit={() => {}} quick={quick} activeQuick={["errors"]} onToggleQuick={onToggle} />);
    expect(screen.getByText("Errors only").getAttribute("aria-pressed")).toBe("true");
    fireEvent.click(screen.getByText("Has feedback"));
    expect(onToggle).toHaveBeenCalledWith("feedback");
  });

  it("clears the filter", () => {
    const onSubmit = vi.fn();
    render(<FilterBar value="name = 'x'" onSubmit={onSubmit} />);
    fireEvent.click(screen.getByText("Clear"));
    expect(onSubmit).toHaveBeenCalledWith("");
  });
});

describe("filter composition", () => {
  it("wraps the typed filter and quick filters so OR keeps its meaning", () => {
    expect(composeFilter("a = 1 OR b = 2", ["status = 'ERROR'"])).toBe("(a = 1 OR b = 2) AND (status = 'ERROR')");
    expect(composeFilter("  ", ["x = 1"])).toBe("(x = 1)");
    expect(composeFilter("x = 1", [])).toBe("x = 1");
  });

  it("maps an error position back into the typed text", () => {
    expect(userPosition("status =", [], 8)).toBe(8);
    expect(userPosition("status =", ["x = 1"], 9)).toBe(8);
    expect(userPosition("status =", ["x = 1"], 30)).toBeNull();
  });

  it("quotes feedback names that are not plain identifiers", () => {
    const [, , feedback] = quickFilters(2000, ["helpful", "my score"]);
    expect(feedback.clause).toBe("feedback.helpful IS NOT NULL OR feedback.`my score` IS NOT NULL");
  });
});
