import type PDFDocument from 'pdfkit';

/**
 * pdfkit, loaded the first time a PDF is drawn rather than with the modules that draw one: it
 * decompresses its font and line-breaking tables as it loads (about a third of a second of CPU),
 * which every `holdfast serve` start and every command that never draws a PDF would pay for.
 */
let loading: Promise<typeof PDFDocument> | null = null;

export function loadPdfKit(): Promise<typeof PDFDocument> {
  loading ??= import('pdfkit').then((m) => m.default);
  return loading;
}
