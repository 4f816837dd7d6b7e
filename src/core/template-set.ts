/**
 * The shape of compiled mail content, apart from the compiler (`templates.ts`): a `Delivery`
 * carries a broadcast's compiled content (`types.ts`), and `templates.ts` reads deliveries, so the
 * types both need live here and neither module imports the other's runtime.
 */

/** The variables a template may use. Every one is known for every delivery. */
export const TEMPLATE_VARS = ['name', 'email', 'time', 'date'] as const;
export type TemplateVar = (typeof TEMPLATE_VARS)[number];
export type TemplateVars = Readonly<Record<TemplateVar, string>>;

/** Literal text, or the place of a variable (not to be confused with a recipient `Segment`). */
export type TemplateSegment = { readonly text: string } | { readonly var: TemplateVar };

export interface CompiledPart {
  /** The Mustache source, as given (line ends normalised to LF). */
  readonly source: string;
  readonly segments: readonly TemplateSegment[];
}

/** One kind's templates, compiled. `html` is absent for text-only mail. */
export interface TemplateSet {
  readonly subject: CompiledPart;
  readonly text: CompiledPart;
  readonly html: CompiledPart | undefined;
}
