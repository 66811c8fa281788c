-- The chat buffer: Markdown-like editing.
if vim.b.did_ftplugin then
  return
end
vim.b.did_ftplugin = true
vim.bo.textwidth = 0
vim.bo.commentstring = '<!-- %s -->'
vim.opt_local.conceallevel = 2
vim.opt_local.concealcursor = 'n'
vim.b.undo_ftplugin = 'setlocal textwidth< commentstring< conceallevel< concealcursor<'
