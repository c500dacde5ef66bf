/** The ✕ in a panel's header: closes the panel; `label` is its tooltip and accessible name. */
export function CloseButton({ label, onClick }: { label: string; onClick: () => void }) {
  return (
    <button type="button" className="icon-button" onClick={onClick} title={label} aria-label={label}>
      ✕
    </button>
  );
}
